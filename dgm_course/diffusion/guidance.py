r"""Conditional diffusion and classifier-free guidance (Ho & Salimans 2021).

One network :math:`\hat\varepsilon(x_t, t, y)` learns both the conditional noise (``y`` a class) and the
unconditional one (``y = \varnothing``, the extra label :attr:`LabelledField.null`): during training the label is
replaced by :math:`\varnothing` with probability :math:`p_{\mathrm{uncond}}` in the simplified loss,

.. math::
    \mathbb E_{t, x_0, y, \varepsilon, \tilde y}
    \big\lVert\hat\varepsilon(\alpha_t x_0 + \sigma_t\varepsilon, t, \tilde y) - \varepsilon\big\rVert^2, \qquad
    \tilde y = \varnothing \text{ with probability } p_{\mathrm{uncond}}, \ \tilde y = y \text{ otherwise}.

At sampling time the two predictions are extrapolated with the guidance weight :math:`w \ge 0`:

.. math::
    \tilde\varepsilon(x_t, t, y) = (1 + w)\,\hat\varepsilon(x_t, t, y) - w\,\hat\varepsilon(x_t, t, \varnothing),

that is, in scores, :math:`\tilde s = \nabla\log p_t(x) + (1 + w)\nabla\log p_t(y \mid x)`: the conditional score
with the implicit classifier's gradient amplified, which pushes each sample towards its class. :math:`w = 0` is the
plain conditional model.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .._checks import positive_int
from ..nets import mlp, time_features
from .model import Denoiser, denoising_loss
from .schedules import Schedule


class LabelledField(nn.Module):
    r"""An MLP :math:`\mathrm{net}(t, x, y)` on the flat point :math:`x \in \mathbb R^d`, the time features
    :math:`(t, \cos\pi k t, \sin\pi k t)_{k \le F}` and a learnt embedding of the label :math:`y \in \{0, \dots,
    C - 1\}` or of :math:`\varnothing` = :attr:`null` = :math:`C`."""

    freqs: Tensor  # a buffer: the frequencies of the time features

    def __init__(self, dim: int, classes: int, hidden: int = 256, depth: int = 3, embed: int = 32,
                 freqs: int = 8) -> None:
        super().__init__()
        self.dim, self.classes = positive_int(dim, "dim"), positive_int(classes, "classes")
        self.null = self.classes
        self.register_buffer("freqs", torch.arange(1, positive_int(freqs, "freqs") + 1) * torch.pi)
        self.label = nn.Embedding(self.classes + 1, positive_int(embed, "embed"))
        self.net = mlp(dim + 1 + 2 * freqs + embed, dim, hidden, depth, activation=nn.SiLU)

    def forward(self, t: Tensor, x: Tensor, y: Tensor) -> Tensor:
        r"""The output (batch, d) at times ``t`` (a number or one per row), points ``x`` (batch, d) and integer labels
        ``y`` (batch,) in :math:`0, \dots, C - 1`, or :attr:`null` for :math:`\varnothing`."""
        if y.shape != (len(x),) or y.dtype not in (torch.int64, torch.int32):
            raise ValueError(f"y must hold one integer label per row, shape ({len(x)},); got {tuple(y.shape)} "
                             f"{y.dtype}")
        if (y < 0).any() or (y > self.null).any():
            raise ValueError(f"labels must lie in 0..{self.classes - 1}, or {self.null} for no label")
        return self.net(torch.cat([x, time_features(t, x, self.freqs), self.label(y)], dim=1))


class _Guided(nn.Module):
    """``net`` with its labels fixed, extrapolated away from the unconditional prediction by ``weight``."""

    y: Tensor  # a buffer: the labels, one per row or one for all

    def __init__(self, net: nn.Module, y: Tensor | int, weight: float) -> None:
        super().__init__()
        self.field, self.weight = net, float(weight)
        self.register_buffer("y", torch.as_tensor(y).long().reshape(-1))

    def forward(self, t: Tensor, x: Tensor) -> Tensor:
        y = self.y.expand(len(x)) if len(self.y) == 1 else self.y
        eps = self.field(t, x, y)
        if self.weight == 0:
            return eps
        null: int = getattr(self.field, "null")  # the field's label for "no label"
        return (1 + self.weight) * eps - self.weight * self.field(t, x, torch.full_like(y, null))


def guided(net: nn.Module, schedule: Schedule, y: Tensor | int, weight: float = 0.0) -> Denoiser:
    r"""The noise-prediction :class:`~.model.Denoiser` of ``net`` (a :class:`LabelledField`, or any module
    ``net(t, x, y)`` predicting the noise, with attributes ``dim`` and ``null``) for the labels ``y`` (one per row,
    or one for all) with guidance weight :math:`w` = ``weight``, which predicts the noise

    .. math::
        \tilde\varepsilon(x_t, t, y) = (1 + w)\,\hat\varepsilon(x_t, t, y) - w\,\hat\varepsilon(x_t, t, \varnothing):

    :math:`w = 0` is the conditional model, and ``y = net.null`` the unconditional one. Every sampler of
    :mod:`.samplers` takes it."""
    if not weight >= 0:
        raise ValueError(f"weight must be >= 0 (0: the conditional model); got {weight!r}")
    dim: int = getattr(net, "dim")
    return Denoiser(_Guided(net, y, weight), schedule, "eps", shape=(dim,))


def label_dropout_loss(net: nn.Module, schedule: Schedule, x0: Tensor, y: Tensor, p_uncond: float = 0.1,
                       time_power: float = 1.0, generator: torch.Generator | None = None) -> Tensor:
    r"""The simplified loss of the conditional model on a batch ``x0`` with labels ``y``, each label replaced by
    :math:`\varnothing` (``net.null``) with probability :math:`p_{\mathrm{uncond}}` = ``p_uncond``:

    .. math::
        \mathbb E_{t, \varepsilon, \tilde y}
        \big\lVert\hat\varepsilon(\alpha_t x_0 + \sigma_t\varepsilon, t, \tilde y) - \varepsilon\big\rVert^2, \qquad
        \tilde y = \varnothing \text{ with probability } p_{\mathrm{uncond}}, \ \tilde y = y \text{ otherwise},

    summed over features and averaged over the batch, with the times of :func:`~.model.denoising_loss`
    (``time_power`` as there). One network learns both models."""
    if not 0 <= p_uncond < 1:
        raise ValueError(f"p_uncond must lie in [0, 1); got {p_uncond!r}")
    if len(y) != len(x0):
        raise ValueError(f"need one label per example: {len(x0)} examples, {len(y)} labels")
    u = torch.rand(len(y), generator=generator, device=generator.device if generator is not None else y.device)
    null: int = getattr(net, "null")
    labels = torch.where(u.to(y.device) < p_uncond, torch.full_like(y, null), y)
    return denoising_loss(guided(net, schedule, labels), x0, generator, time_power=time_power)
