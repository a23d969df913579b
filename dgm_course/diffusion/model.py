r"""One denoising model, four readings of its output, and the loss that trains it.

A network :math:`\mathrm{net}(t, x_t)` sees a noisy point :math:`x_t = \alpha_t x_0 + \sigma_t\varepsilon`
(:mod:`.schedules`). Since :math:`x_t` is known, predicting any one of these determines the others:

- the noise, :math:`\hat\varepsilon`; the clean point, :math:`\hat x_0 = (x_t - \sigma_t\hat\varepsilon)/\alpha_t`;
- the score, :math:`\hat s = \nabla_x \log p_t(x_t) \approx -\hat\varepsilon / \sigma_t` (Tweedie's formula:
  :math:`\mathbb E[x_0 \mid x_t] = (x_t + \sigma_t^2 \nabla \log p_t(x_t))/\alpha_t`);
- the velocity, :math:`\hat u = \dot\alpha_t \hat x_0 + \dot\sigma_t\hat\varepsilon`, the field of the
  probability-flow ODE :math:`\dot x = f(t)x - \tfrac12 g^2(t)\nabla\log p_t(x)` and of flow matching with the
  Gaussian path :math:`(\alpha_t, \sigma_t)`: the two are one field.

:class:`Denoiser` wraps a network with its schedule and the name of what it predicts, and answers every
reading. :func:`denoising_loss` regresses the network's output on its target at a random time :math:`t`,

.. math::
    \mathbb E_{t, x_0, \varepsilon}\,\lambda(t)\,\big\lVert\mathrm{net}(t, \alpha_t x_0 + \sigma_t\varepsilon)
    - \text{target}\big\rVert^2,

with the target :math:`\varepsilon`, :math:`x_0`, :math:`-\varepsilon/\sigma_t` or
:math:`\dot\alpha_t x_0 + \dot\sigma_t\varepsilon` (for ``"eps"``, ``"x0"``, ``"score"``, ``"velocity"``) and
:math:`\lambda = 1`, but :math:`\lambda = \sigma_t^2` for the score: for ``"eps"`` it is DDPM's simplified loss
(Ho et al. 2020), for ``"score"`` denoising score matching weighted by :math:`\sigma_t^2` (Vincent 2011; Song et al.
2021), for ``"velocity"`` flow matching with the schedule's path (Lipman et al. 2023). :func:`posterior` and
:func:`elbo_weight` give the terms of the ELBO of which the simplified loss keeps the shape and drops the weights.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor, nn

from .. import _checks, latent
from .._checks import one_of
from .schedules import Schedule

PARAMETERISATIONS = ("eps", "x0", "score", "velocity")


def _per_row(value: Tensor, x: Tensor) -> Tensor:
    """A schedule quantity at one time per row, shaped to broadcast against ``x`` (batch, ...)."""
    return value.reshape(len(x), *([1] * (x.ndim - 1))).to(x.dtype)


class Denoiser(nn.Module):
    r"""A network ``net(t, x)`` that predicts ``parameterisation`` (``"eps"``, ``"x0"``, ``"score"`` or
    ``"velocity"``) of :math:`x_t` under ``schedule``, for data of shape ``shape`` ((d,) for vectors).

    :meth:`predict` returns :math:`(\hat x_0, \hat\varepsilon)` whatever the network predicts; :meth:`eps`,
    :meth:`x0`, :meth:`score` and :meth:`velocity` are the four readings of the module docstring. Times are a
    number or one per row, in :math:`(0, t_{\max}]`.
    """

    anchor: Tensor  # a buffer: the device and dtype samples are made in

    def __init__(self, net: Callable[[Tensor, Tensor], Tensor], schedule: Schedule, parameterisation: str = "eps",
                 shape: tuple[int, ...] = (2,)) -> None:
        super().__init__()
        self.parameterisation = one_of(parameterisation, PARAMETERISATIONS, "parameterisation")
        if not isinstance(schedule, Schedule):
            raise ValueError(f"schedule must be a dgm_course.diffusion.Schedule; got {type(schedule).__name__}")
        if parameterisation in ("eps", "score") and float(schedule.alpha(schedule.t_max)) == 0:
            raise ValueError(f"the {schedule.kind!r} schedule reaches alpha = 0 at t = {schedule.t_max}, where a "
                             f"{parameterisation!r} prediction cannot give x0; predict 'velocity' or 'x0' instead")
        own = getattr(net, "schedule", None)
        if isinstance(own, Schedule) and repr(own) != repr(schedule):
            raise ValueError(f"the network carries its own schedule, {own!r}, but the Denoiser was given {schedule!r}; "
                             "give both the same")
        self.net, self.schedule, self.shape = net, schedule, tuple(shape)
        weights = next((p for p in net.parameters() if p.is_floating_point()), None) \
            if isinstance(net, nn.Module) else None
        anchor = torch.zeros(()) if weights is None else torch.zeros((), dtype=weights.dtype, device=weights.device)
        self.register_buffer("anchor", anchor)  # the device and dtype that samples are made in: the network's

    def _times(self, t: Tensor | float, x: Tensor) -> Tensor:
        if tuple(x.shape[1:]) != self.shape or x.ndim != len(self.shape) + 1:
            raise ValueError(f"x must have shape (batch, {', '.join(map(str, self.shape))}); got {tuple(x.shape)}")
        t = torch.as_tensor(t, dtype=x.dtype, device=x.device)
        if t.ndim == 0:
            t = t.expand(len(x))
        if t.shape != (len(x),):
            raise ValueError(f"t must be a number or one time per row, shape ({len(x)},); got {tuple(t.shape)}")
        return t

    def forward(self, t: Tensor | float, x: Tensor) -> Tensor:
        """The network's raw output (the ``parameterisation`` prediction)."""
        return self.net(self._times(t, x), x)

    def predict(self, t: Tensor | float, x: Tensor) -> tuple[Tensor, Tensor]:
        r""":math:`(\hat x_0, \hat\varepsilon)` at ``x`` = :math:`x_t`, from the network's output (module docstring)."""
        t = self._times(t, x)
        out = self.net(t, x)
        s = self.schedule
        a, sig = _per_row(s.alpha(t), x), _per_row(s.sigma(t), x)
        if self.parameterisation == "eps":
            return (x - sig * out) / a, out
        if self.parameterisation == "x0":
            return out, (x - a * out) / sig
        if self.parameterisation == "score":
            return (x + sig**2 * out) / a, -sig * out
        da, ds = _per_row(s.dalpha(t), x), _per_row(s.dsigma(t), x)
        det = a * ds - sig * da  # > 0 for every schedule: x and u determine (x0, eps)
        return (ds * x - sig * out) / det, (a * out - da * x) / det

    def eps(self, t: Tensor | float, x: Tensor) -> Tensor:
        r""":math:`\hat\varepsilon(t, x)`."""
        return self.predict(t, x)[1]

    def x0(self, t: Tensor | float, x: Tensor) -> Tensor:
        r""":math:`\hat x_0(t, x)`, the model's :math:`\mathbb E[x_0 \mid x_t = x]`."""
        return self.predict(t, x)[0]

    def score(self, t: Tensor | float, x: Tensor) -> Tensor:
        r""":math:`\hat s(t, x) = -\hat\varepsilon / \sigma_t \approx \nabla_x \log p_t(x)`."""
        t = self._times(t, x)
        return -self.eps(t, x) / _per_row(self.schedule.sigma(t), x)

    def velocity(self, t: Tensor | float, x: Tensor) -> Tensor:
        r"""The probability-flow field :math:`\dot\alpha_t\hat x_0 + \dot\sigma_t\hat\varepsilon
        = f(t)x - \tfrac12 g^2(t)\hat s(t, x)`."""
        t = self._times(t, x)
        x0, eps = self.predict(t, x)
        return _per_row(self.schedule.dalpha(t), x) * x0 + _per_row(self.schedule.dsigma(t), x) * eps


def noisy(schedule: Schedule, x0: Tensor, t: Tensor, eps: Tensor) -> Tensor:
    r"""The forward process in one jump: :math:`x_t = \alpha_t x_0 + \sigma_t \varepsilon` for one time per row."""
    if eps.shape != x0.shape or t.shape != (len(x0),):
        raise ValueError(f"need eps of x0's shape {tuple(x0.shape)} and one time per row ({len(x0)},); got "
                         f"{tuple(eps.shape)} and {tuple(t.shape)}")
    return _per_row(schedule.alpha(t), x0) * x0 + _per_row(schedule.sigma(t), x0) * eps


def denoising_loss(model: Denoiser, x0: Tensor, generator: torch.Generator | None = None,
                   t_min: float | None = None, time_power: float = 1.0) -> Tensor:
    r"""The denoising loss on a batch ``x0``: :math:`\mathbb E_{t, \varepsilon}\,\lambda(t)\lVert
    \mathrm{net}(t, x_t) - \text{target}\rVert^2`, summed over features and averaged over the batch, with
    :math:`t \sim U[t_{\min}, t_{\max}]` and the target of the model's parameterisation: :math:`\varepsilon`,
    :math:`x_0`, the velocity :math:`\dot\alpha_t x_0 + \dot\sigma_t\varepsilon`, or the score of
    :math:`q(x_t \mid x_0)`, :math:`-\varepsilon/\sigma_t`, with :math:`\lambda = \sigma_t^2` (so that it is the
    noise loss in other units). ``t_min`` defaults to :math:`10^{-3}` for the variance-preserving schedules
    (where :math:`\sigma_0 = 0`) and 0 otherwise. ``time_power`` :math:`= k` draws :math:`t = t_{\min} +
    (t_{\max} - t_{\min})u^k`, :math:`u \sim U[0, 1]`: uniform for :math:`k = 1`, more and more concentrated near the
    data as :math:`k` grows (the ``time_power`` of :func:`~dgm_course.flows.flow_matching_loss`, with time read
    backward; the minimiser is the same at every :math:`t`, only where the regression spends its samples changes)."""
    _checks.time_power(time_power)
    s = model.schedule
    t_min = (1e-3 if s.kind in ("linear", "cosine") else 0.0) if t_min is None else float(t_min)
    if not 0 <= t_min < s.t_max:
        raise ValueError(f"t_min must lie in [0, {s.t_max}); got {t_min!r}")
    u = latent.rand_rows(x0, generator)
    t = t_min + (s.t_max - t_min) * (u if time_power == 1 else u**time_power)
    eps = latent.randn_like(x0, generator)
    xt = noisy(s, x0, t, eps)
    out = model(t, xt)
    p = model.parameterisation
    if p == "eps":
        error = out - eps
    elif p == "x0":
        error = out - x0
    elif p == "velocity":
        error = out - (_per_row(s.dalpha(t), x0) * x0 + _per_row(s.dsigma(t), x0) * eps)
    else:
        error = _per_row(s.sigma(t), x0) * out + eps  # sigma^2 |out + eps / sigma|^2
    return (error**2).flatten(1).sum(dim=1).mean()


def posterior(schedule: Schedule, x0: Tensor, xt: Tensor, r: float, t: float) -> tuple[Tensor, float]:
    r"""The forward process's posterior :math:`q(x_r \mid x_t, x_0) = \mathcal N(\tilde\mu, \tilde\sigma^2 I)`
    at an earlier time :math:`r < t`, with :math:`\alpha_{t|r} = \alpha_t/\alpha_r`,
    :math:`\sigma_{t|r}^2 = \sigma_t^2 - \alpha_{t|r}^2\sigma_r^2`:

    .. math::
        \tilde\mu = \frac{\alpha_{t|r}\sigma_r^2}{\sigma_t^2}x_t + \frac{\alpha_r\sigma_{t|r}^2}{\sigma_t^2}x_0,
        \qquad \tilde\sigma^2 = \frac{\sigma_{t|r}^2\sigma_r^2}{\sigma_t^2}.

    Returns :math:`(\tilde\mu, \tilde\sigma)`."""
    if not 0 <= r < t <= schedule.t_max:
        raise ValueError(f"need 0 <= r < t <= {schedule.t_max}; got r={r!r}, t={t!r}")
    r_, t_ = torch.tensor(r, dtype=torch.float64), torch.tensor(t, dtype=torch.float64)
    a_r, a_t = float(schedule.alpha(r_)), float(schedule.alpha(t_))
    v_r, v_t = float(schedule.sigma(r_)) ** 2, float(schedule.sigma(t_)) ** 2
    a_tr = a_t / a_r
    v_tr = v_t - a_tr**2 * v_r
    mean = (a_tr * v_r / v_t) * xt + (a_r * v_tr / v_t) * x0
    return mean, math.sqrt(v_tr * v_r / v_t)


def elbo_weight(schedule: Schedule, r: float, t: float) -> float:
    r"""The weight of :math:`\lVert\varepsilon - \hat\varepsilon\rVert^2` in the ELBO's term
    :math:`\mathrm{KL}\big(q(x_r \mid x_t, x_0)\,\|\,p_\theta(x_r \mid x_t)\big)` (an earlier time :math:`r < t`)
    when :math:`p_\theta` is the posterior with :math:`\hat x_0` in place of :math:`x_0`:
    :math:`\tfrac12\big(\mathrm{SNR}(r)/\mathrm{SNR}(t) - 1\big)`. Its size shrinks with the step :math:`t - r`:
    only the ratios of these weights compare with the simplified loss's equal weights."""
    if not 0 < r < t <= schedule.t_max:
        raise ValueError(f"need 0 < r < t <= {schedule.t_max}; got r={r!r}, t={t!r}")
    snr = schedule.snr(torch.tensor([r, t], dtype=torch.float64))
    return 0.5 * float(snr[0] / snr[1] - 1)
