r"""Flow matching (Lipman et al. 2023): training a continuous flow without solving its ODE.

Choose a path of distributions from the latent :math:`p_0 = \mathcal N(0, I)` to the data, built from
per-example paths. The conditional optimal-transport path joins a latent draw :math:`x_0` to a data point
:math:`x_1` by a straight line that ends in a small Gaussian of width :math:`\sigma_{\min}`:

.. math::
    x_t = \big(1 - (1 - \sigma_{\min})t\big)\,x_0 + t\,x_1, \qquad
    u_t(x_t \mid x_1) = \frac{d x_t}{dt} = x_1 - (1 - \sigma_{\min})\,x_0.

The conditional flow-matching loss regresses the field on these velocities,

.. math::
    \mathcal L_{\mathrm{CFM}}(\phi) = \mathbb E_{t \sim U[0,1],\, x_0 \sim p_0,\, x_1 \sim p_{\mathrm{data}}}
    \big\|h_\phi(t, x_t) - u_t(x_t \mid x_1)\big\|^2,

and has the same gradient as regressing on the (intractable) marginal field that generates the whole path:
its minimiser pushes :math:`p_0` to (nearly) the data distribution. The argument holds time by time, so
:math:`t` may be drawn from any density with full support on :math:`[0, 1]`: the minimiser is the same
marginal field, only where the regression spends its samples changes. ``time_power`` :math:`= k` draws
:math:`t = 1 - (1 - u)^k`, :math:`u \sim U[0, 1]`, of density :math:`\tfrac1k (1 - t)^{1/k - 1}`: uniform
for :math:`k = 1`, more and more concentrated near the data (:math:`t = 1`), where a field that carries
mass onto sharp-edged data must vary fastest, as :math:`k` grows. Each step costs one evaluation of
:math:`h_\phi`; the ODE is solved only to sample or to evaluate a likelihood, with
:class:`~dgm_course.flows.cnf.CNF`; :class:`FlowMatching` is such a flow trained by the loss.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import torch
from torch import Tensor, nn

from .. import _checks
from .base import Flow
from .cnf import CNF


def conditional_ot_path(x0: Tensor, x1: Tensor, t: Tensor, sigma_min: float = 1e-3) -> tuple[Tensor, Tensor]:
    r"""The point :math:`x_t` and the target velocity :math:`u_t(x_t \mid x_1)` of the conditional OT path
    (module docstring) for rows ``x0``, ``x1`` of shape (batch, d) and times ``t`` of shape (batch,)."""
    if x0.shape != x1.shape or x0.ndim != 2:
        raise ValueError(f"x0 and x1 must both have shape (batch, d); got {tuple(x0.shape)} and {tuple(x1.shape)}")
    if t.shape != (len(x0),):
        raise ValueError(f"t must hold one time per row, shape ({len(x0)},); got {tuple(t.shape)}")
    t = t[:, None]
    return (1 - (1 - sigma_min) * t) * x0 + t * x1, x1 - (1 - sigma_min) * x0


def flow_matching_loss(field: nn.Module, x1: Tensor, sigma_min: float = 1e-3,
                       generator: torch.Generator | None = None, time_power: float = 1.0) -> Tensor:
    r"""The conditional flow-matching loss :math:`\mathcal L_{\mathrm{CFM}}` on a batch of data ``x1``, with
    fresh :math:`x_0 \sim \mathcal N(0, I)` and :math:`t = 1 - (1 - u)^k`, :math:`u \sim U[0, 1]`,
    :math:`k` = ``time_power`` (1: uniform; module docstring), drawn from ``generator`` if given."""
    _checks.time_power(time_power)
    x0 = torch.randn(x1.shape, generator=generator, dtype=x1.dtype, device=x1.device)
    uniform = torch.rand(len(x1), generator=generator, dtype=x1.dtype, device=x1.device)
    t = uniform if time_power == 1 else 1 - (1 - uniform) ** time_power
    xt, u = conditional_ot_path(x0, x1, t, sigma_min)
    return ((field(t, xt) - u) ** 2).sum(dim=1).mean()


class FlowMatching(Flow):
    r"""A continuous flow :math:`\dot z = h_\phi(t, z)` (``field``, in a :class:`~dgm_course.flows.cnf.CNF` solved
    by ``method`` in ``steps`` steps to sample and to evaluate its log-density) whose objective is
    :func:`flow_matching_loss` with ``sigma_min`` and ``time_power``, not the likelihood: training never solves the
    ODE."""

    def __init__(self, field: nn.Module, dim: int, method: str = "rk4", steps: int = 16, sigma_min: float = 1e-3,
                 time_power: float = 1.0) -> None:
        super().__init__(CNF(field, dim, method=method, steps=steps))
        self.sigma_min, self.time_power = float(sigma_min), _checks.time_power(time_power)

    @property
    def field(self) -> nn.Module:
        r"""The velocity :math:`h_\phi` (the CNF's field)."""
        field = self.bijection.field
        assert isinstance(field, nn.Module)
        return field

    def objective(self, steps: int) -> Callable[[Tensor], Tensor]:
        """The conditional flow-matching loss of a batch, whatever the run's length."""
        # a partial, not a lambda: fit's checkpoint fingerprint reads the settings from it
        return functools.partial(_fm_loss, self.field, sigma_min=self.sigma_min, time_power=self.time_power)


def _fm_loss(field: nn.Module, x1: Tensor, *, sigma_min: float, time_power: float) -> Tensor:
    """:func:`flow_matching_loss` with the batch second, for :meth:`FlowMatching.objective`'s partial."""
    return flow_matching_loss(field, x1, sigma_min, time_power=time_power)
