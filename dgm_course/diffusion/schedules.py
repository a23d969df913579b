r"""Noise schedules: the forward process :math:`x_t = \alpha_t x_0 + \sigma_t \varepsilon` of diffusion models.

Time runs from the data (:math:`t = 0`) to the noise (:math:`t = t_{\max}`, 1 for every schedule but the cosine
one); :math:`\varepsilon \sim \mathcal N(0, I)`. A schedule is the pair :math:`(\alpha_t, \sigma_t)`
with its time derivatives, from which the other quantities of the process follow:

.. math::
    \mathrm{SNR}(t) = \frac{\alpha_t^2}{\sigma_t^2}, \qquad
    f(t) = \frac{\dot\alpha_t}{\alpha_t}, \qquad
    g^2(t) = \frac{d\sigma_t^2}{dt} - 2 f(t)\,\sigma_t^2,

the drift and diffusion coefficients of the SDE :math:`dx = f(t)\,x\,dt + g(t)\,dw` whose marginals are those of
:math:`x_t` (Song et al. 2021; Kingma et al. 2021). The schedules:

``"linear"`` (variance preserving, :math:`\alpha_t^2 + \sigma_t^2 = 1`)
    the continuous limit of DDPM's linear :math:`\beta_1 = 10^{-4}, \dots, \beta_{1000} = 0.02` (Ho et al. 2020):
    :math:`\beta(t) = \beta_{\min} + t(\beta_{\max} - \beta_{\min})` with :math:`\beta_{\min} = 0.1`,
    :math:`\beta_{\max} = 20`, and :math:`\alpha_t = \exp\!\big(-\tfrac12\int_0^t \beta\big)`.
``"cosine"`` (variance preserving; Nichol & Dhariwal 2021)
    :math:`\alpha_t = \cos\big(\tfrac\pi2 \tfrac{t + s}{1 + s}\big) / \cos\big(\tfrac\pi2 \tfrac{s}{1 + s}\big)`,
    :math:`s = 0.008`. :math:`\alpha_1 = 0`, where :math:`x_0` cannot be told from the noise at all, so the process
    stops at :math:`t_{\max} = 0.999` (:math:`\alpha \approx 0.0016`).
``"ve"`` (variance exploding; Song & Ermon 2019)
    :math:`\alpha_t = 1`, :math:`\sigma_t = \sigma_{\min}(\sigma_{\max}/\sigma_{\min})^t`: the geometric noise levels
    of annealed Langevin dynamics. The noise at :math:`t = 1` is :math:`\mathcal N(0, \sigma_{\max}^2 I)`.
``"ot"`` (the conditional optimal-transport path of flow matching, Lipman et al. 2023)
    :math:`\alpha_t = 1 - t`, :math:`\sigma_t = \sigma_{\min} + (1 - \sigma_{\min})t`: the straight line between data
    and noise, flow matching's path (:mod:`dgm_course.flows.matching`) read backward in time (its time
    :math:`\tau = 1 - t`).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from .._checks import one_of

KINDS = ("linear", "cosine", "ve", "ot")


class Schedule:
    r"""The schedule ``kind`` (module docstring); ``alpha(t)``, ``sigma(t)`` and their derivatives take a tensor
    of times in :math:`[0, t_{\max}]` and return a tensor of the same shape.

    Args:
        kind: ``"linear"``, ``"cosine"``, ``"ve"`` or ``"ot"``.
        beta_min, beta_max: the linear schedule's :math:`\beta(0)` and :math:`\beta(1)`.
        sigma_min, sigma_max: the VE schedule's noise levels at :math:`t = 0` and 1 (``sigma_min`` is also the
            width the OT path ends in at the data).
    """

    def __init__(self, kind: str = "linear", *, beta_min: float = 0.1, beta_max: float = 20.0,
                 sigma_min: float | None = None, sigma_max: float = 10.0) -> None:
        self.kind = one_of(kind, KINDS, "schedule")
        if sigma_min is None:
            sigma_min = 1e-3 if kind == "ot" else 0.01
        if not 0 < beta_min <= beta_max:
            raise ValueError(f"need 0 < beta_min <= beta_max; got beta_min={beta_min!r}, beta_max={beta_max!r}")
        if not 0 < sigma_min < sigma_max or (kind == "ot" and not sigma_min < 1):
            raise ValueError(f"need 0 < sigma_min < sigma_max (and sigma_min < 1 for 'ot'); got "
                             f"sigma_min={sigma_min!r}, sigma_max={sigma_max!r}")
        self.beta_min, self.beta_max = float(beta_min), float(beta_max)
        self.sigma_min, self.sigma_max = float(sigma_min), float(sigma_max)
        self.cosine_s = 0.008
        self.t_max = 0.999 if kind == "cosine" else 1.0

    def __repr__(self) -> str:
        extra = {"linear": f"beta_min={self.beta_min}, beta_max={self.beta_max}",
                 "ve": f"sigma_min={self.sigma_min}, sigma_max={self.sigma_max}",
                 "ot": f"sigma_min={self.sigma_min}", "cosine": f"s={self.cosine_s}"}[self.kind]
        return f"Schedule({self.kind!r}, {extra})"

    def _times(self, t: Tensor | float) -> Tensor:
        t = torch.as_tensor(t, dtype=torch.float64) if not isinstance(t, Tensor) else t  # a number: exact
        if not t.is_floating_point():
            t = t.to(torch.get_default_dtype())
        if not torch.isfinite(t).all() or (t < 0).any() or (t > self.t_max + 1e-12).any():
            bad = t[~(torch.isfinite(t) & (t >= 0) & (t <= self.t_max + 1e-12))].flatten()[0]
            raise ValueError(f"times must lie in [0, {self.t_max}] for the {self.kind!r} schedule; got {float(bad)!r}")
        return t

    def alpha(self, t: Tensor | float) -> Tensor:
        r""":math:`\alpha_t`, the scale of the data in :math:`x_t`."""
        t = self._times(t)
        if self.kind == "linear":
            return torch.exp(-0.5 * (self.beta_min * t + 0.5 * (self.beta_max - self.beta_min) * t**2))
        if self.kind == "cosine":
            s = self.cosine_s
            return torch.cos(math.pi / 2 * (t + s) / (1 + s)) / math.cos(math.pi / 2 * s / (1 + s))
        if self.kind == "ve":
            return torch.ones_like(t)
        return 1 - t

    def sigma(self, t: Tensor | float) -> Tensor:
        r""":math:`\sigma_t`, the scale of the noise in :math:`x_t`."""
        t = self._times(t)
        if self.kind in ("linear", "cosine"):
            return torch.sqrt(-torch.expm1(2 * torch.log(self.alpha(t))))  # sqrt(1 - alpha^2), exact near t = 0
        if self.kind == "ve":
            return self.sigma_min * (self.sigma_max / self.sigma_min) ** t
        return self.sigma_min + (1 - self.sigma_min) * t

    def dalpha(self, t: Tensor | float) -> Tensor:
        r""":math:`\dot\alpha_t = d\alpha_t / dt`."""
        t = self._times(t)
        if self.kind == "linear":
            return -0.5 * self.beta(t) * self.alpha(t)
        if self.kind == "cosine":
            s = self.cosine_s
            return (-math.pi / (2 * (1 + s)) * torch.sin(math.pi / 2 * (t + s) / (1 + s))
                    / math.cos(math.pi / 2 * s / (1 + s)))
        if self.kind == "ve":
            return torch.zeros_like(t)
        return -torch.ones_like(t)

    def dsigma(self, t: Tensor | float) -> Tensor:
        r""":math:`\dot\sigma_t = d\sigma_t / dt` (for the variance-preserving ones,
        :math:`-\alpha_t\dot\alpha_t/\sigma_t`, infinite at :math:`t = 0` where :math:`\sigma_0 = 0`)."""
        t = self._times(t)
        if self.kind in ("linear", "cosine"):
            return -self.alpha(t) * self.dalpha(t) / self.sigma(t)
        if self.kind == "ve":
            return self.sigma(t) * math.log(self.sigma_max / self.sigma_min)
        return (1 - self.sigma_min) * torch.ones_like(t)

    def beta(self, t: Tensor | float) -> Tensor:
        r"""The linear schedule's :math:`\beta(t) = -2\dot\alpha_t / \alpha_t` (for every schedule: :math:`-2f(t)`)."""
        t = self._times(t)
        if self.kind == "linear":
            return self.beta_min + t * (self.beta_max - self.beta_min)
        return -2 * self.dalpha(t) / self.alpha(t)

    def snr(self, t: Tensor | float) -> Tensor:
        r""":math:`\mathrm{SNR}(t) = \alpha_t^2 / \sigma_t^2`, decreasing from :math:`\infty` (or a large value) to
        (nearly) 0."""
        return self.alpha(t) ** 2 / self.sigma(t) ** 2

    def drift(self, t: Tensor | float) -> Tensor:
        r""":math:`f(t) = \dot\alpha_t / \alpha_t`."""
        return self.dalpha(t) / self.alpha(t)

    def g2(self, t: Tensor | float) -> Tensor:
        r""":math:`g^2(t) = \frac{d\sigma_t^2}{dt} - 2 f(t)\sigma_t^2` (``beta(t)`` for the variance-preserving
        schedules)."""
        if self.kind in ("linear", "cosine"):
            return self.beta(t)  # = -2 f, finite at t = 0 where the general formula is 0 times infinity
        sigma = self.sigma(t)
        return 2 * sigma * self.dsigma(t) - 2 * self.drift(t) * sigma**2

    def prior_std(self) -> float:
        r"""The standard deviation of the noise the samplers start from: :math:`\sigma_{t_{\max}}` (1 for the
        variance-preserving schedules and the OT path, :math:`\sigma_{\max}` for VE)."""
        return float(self.sigma(torch.tensor(self.t_max, dtype=torch.float64)))
