r"""Layers that act on each coordinate separately, or only reorder coordinates.

Their Jacobians are diagonal (or a permutation matrix), so the log-determinant is a sum of
one-dimensional terms (or zero).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .base import Bijection


class ElementwiseAffine(Bijection):
    r"""The elementwise affine map :math:`y = e^{a} \odot x + b` with learned :math:`a, b \in \mathbb R^d`.

    .. math::
        \log|\det \nabla f(x)| = \textstyle\sum_{i=1}^d a_i,
        \qquad f^{-1}(y) = e^{-a} \odot (y - b).
    """

    evaluations = 0  # no network: two vectors of parameters

    def __init__(self, dim: int) -> None:
        super().__init__(dim)
        self.log_scale = nn.Parameter(torch.zeros(dim))
        self.shift = nn.Parameter(torch.zeros(dim))

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        r"""``(y, log|det|)`` with :math:`y = x \odot e^{s} + b` and log-determinant :math:`\sum_i s_i`."""
        self._check(x)
        y = x * torch.exp(self.log_scale) + self.shift
        return y, self.log_scale.sum().expand(len(x))

    def inverse(self, y: Tensor) -> tuple[Tensor, Tensor]:
        r"""``(x, log|det|)`` with :math:`x = (y - b) \odot e^{-s}` and log-determinant :math:`-\sum_i s_i`."""
        self._check(y)
        x = (y - self.shift) * torch.exp(-self.log_scale)
        return x, -self.log_scale.sum().expand(len(y))


class ActNorm(ElementwiseAffine):
    r"""Activation normalization (Kingma & Dhariwal 2018): an :class:`ElementwiseAffine` whose
    parameters are set from the first batch it sees in training, so that its output has zero mean and
    unit variance per coordinate:

    .. math::
        a = -\log \hat\sigma, \qquad b = -\hat\mu / \hat\sigma.

    After that first batch both are ordinary trained parameters. The flag is a buffer, so a loaded
    checkpoint is not initialised twice.
    """

    initialized: Tensor  # a boolean buffer: set by the first batch

    def __init__(self, dim: int) -> None:
        super().__init__(dim)
        self.register_buffer("initialized", torch.tensor(False))

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """The affine map; in training, the first batch first sets it to standardise that batch."""
        self._check(x)
        if self.training and not bool(self.initialized):
            if len(x) < 2:
                raise ValueError(f"ActNorm initialises from its first batch, which needs 2 or more rows; got {len(x)}")
            with torch.no_grad():
                std = x.std(dim=0).clamp_min(1e-6)
                self.log_scale.copy_(-torch.log(std))
                self.shift.copy_(-x.mean(dim=0) / std)
                self.initialized.fill_(True)
        return super().forward(x)


class Permutation(Bijection):
    r"""A fixed reordering of the coordinates, :math:`y = x_{\pi}`; volume-preserving:
    :math:`\log|\det \nabla f| = 0`.

    By default the order is reversed, which makes the next coupling layer transform the coordinates the
    previous one left unchanged; ``generator`` draws a random permutation instead.
    """

    order: Tensor  # the permutation and its inverse (buffers)
    inverse_order: Tensor

    evaluations = 0  # no network: a vector of parameters (a fixed order)

    def __init__(self, dim: int, generator: torch.Generator | None = None) -> None:
        super().__init__(dim)
        order = torch.randperm(dim, generator=generator) if generator is not None else torch.arange(dim - 1, -1, -1)
        self.register_buffer("order", order)
        self.register_buffer("inverse_order", torch.argsort(order))

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        r"""The coordinates reordered, :math:`x_\pi`, with zero log-determinant."""
        self._check(x)
        return x[:, self.order], x.new_zeros(len(x))

    def inverse(self, y: Tensor) -> tuple[Tensor, Tensor]:
        """The reordering undone, with zero log-determinant."""
        self._check(y)
        return y[:, self.inverse_order], y.new_zeros(len(y))
