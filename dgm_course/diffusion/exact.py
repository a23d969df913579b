r"""Exact scores, for checking: when the data law is known, so is every noised law :math:`p_t`.

If :math:`x_0 \sim \sum_k w_k \mathcal N(c_k, s^2 I)` (a Gaussian, or any of the toy sets that
:mod:`dgm_course.data.toy2d` builds as such a mixture), then :math:`x_t = \alpha_t x_0 + \sigma_t\varepsilon \sim
\sum_k w_k\,\mathcal N(\alpha_t c_k, (\alpha_t^2 s^2 + \sigma_t^2) I)`, and its score
:math:`\nabla_x\log p_t(x)` is exact. :class:`ExactScore` is such a score as a network for a
:class:`~.model.Denoiser` with ``parameterisation="score"``: the ideal that training tries to reach.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

from ..data import toy2d
from .schedules import Schedule

NoisedLogDensity = Callable[[Tensor, Tensor, Tensor], Tensor]  # (x, alpha, sigma) -> log p_t(x), shape (batch,)


class ExactScore(nn.Module):
    r"""The score :math:`\nabla_x \log p_t(x)` of a known noised law, by autograd of ``log_density(x, alpha, sigma)``
    (the log-density of :math:`\alpha X + \sigma\varepsilon`, with ``alpha`` and ``sigma`` of shape (batch, 1))."""

    def __init__(self, log_density: NoisedLogDensity, schedule: Schedule) -> None:
        super().__init__()
        self.log_density, self.schedule = log_density, schedule

    def forward(self, t: Tensor, x: Tensor) -> Tensor:
        r"""The score :math:`\nabla_x\log p_t(x)` (batch, d) at times ``t`` (batch,) and points ``x`` (batch, d); it
        can be differentiated further when ``x`` requires grad."""
        a, s = self.schedule.alpha(t)[:, None].to(x.dtype), self.schedule.sigma(t)[:, None].to(x.dtype)
        with torch.enable_grad():
            y = x if x.requires_grad else x.detach().requires_grad_(True)
            (grad,) = torch.autograd.grad(self.log_density(y, a, s).sum(), y, create_graph=x.requires_grad)
        return grad


def mixture(means: Tensor, std: float, weights: Tensor | None = None) -> NoisedLogDensity:
    r"""The noised log-density of :math:`\sum_k w_k\mathcal N(c_k, s^2 I)` (``means`` :math:`c_k` of shape (k, d),
    equal weights unless given): :math:`\log\sum_k w_k\mathcal N(x; \alpha c_k, (\alpha^2 s^2 + \sigma^2) I)`."""
    means = torch.as_tensor(means)
    if means.ndim != 2:
        raise ValueError(f"means must have shape (components, d); got {tuple(means.shape)}")
    weights = torch.full((len(means),), 1 / len(means)) if weights is None else torch.as_tensor(weights)
    if weights.shape != (len(means),) or (weights <= 0).any() or abs(float(weights.sum()) - 1) > 1e-6:
        raise ValueError(f"weights must be {len(means)} positive numbers summing to 1; got {weights.tolist()}")
    if not std > 0:
        raise ValueError(f"std must be positive; got {std!r}")

    def log_density(x: Tensor, alpha: Tensor, sigma: Tensor) -> Tensor:
        return toy2d.noised_mixture(x, means.to(x), torch.log(weights.to(x)), std, alpha, sigma)

    return log_density


def gaussian(mean: Tensor, std: float) -> NoisedLogDensity:
    r"""The noised log-density of :math:`\mathcal N(m, s^2 I)`: :math:`\log\mathcal N(x; \alpha m, (\alpha^2 s^2 +
    \sigma^2) I)`."""
    return mixture(torch.as_tensor(mean)[None], std)


def toy(name: str) -> NoisedLogDensity:
    """The noised log-density of the toy set ``name`` (every one but the checkerboard), from
    :func:`dgm_course.data.toy2d.noised_log_density`."""
    toy2d.noised_log_density(name, torch.zeros(1, 2), torch.ones(1, 1), torch.ones(1, 1))  # a clear error now

    def log_density(x: Tensor, alpha: Tensor, sigma: Tensor) -> Tensor:
        return toy2d.noised_log_density(name, x, alpha, sigma)

    return log_density
