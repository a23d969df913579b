r"""Continuous normalizing flows (Chen et al. 2018; Grathwohl et al. 2019): a flow defined by an ODE.

The generator :math:`g` is the time-1 map of :math:`\frac{dz_t}{dt} = h_\phi(t, z_t)`: a latent
:math:`z_0 \sim \mathcal N(0, I)` is carried to the data point :math:`x = z_1` (time 0 is latent, time 1
is data). Along a trajectory the log-density obeys the instantaneous change of variables

.. math::
    \frac{d \log p(z_t)}{dt} = -\operatorname{tr}\Big(\frac{\partial h_\phi}{\partial z}(t, z_t)\Big),

so the log-determinant of the map from time :math:`s` to time :math:`u` is
:math:`\int_s^u \operatorname{tr}\frac{\partial h_\phi}{\partial z}\,dt`: it is solved for together with
:math:`z_t`, as one augmented state :math:`(z_t, \ell_t)`,
:math:`\dot\ell_t = \operatorname{tr}\frac{\partial h}{\partial z}`.

:class:`CNF` is a :class:`~dgm_course.flows.base.Bijection` in the direction of :class:`Flow` (data to
latent, solving from :math:`t=1` back to :math:`t=0`), so ``Flow(CNF(field))`` has ``log_prob``, ``nll``
and ``sample`` like every other flow of the course.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor, nn

from .. import ode
from .._checks import one_of, positive_int
from ..nets import mlp, time_features
from .base import Bijection, Flow


class TimeField(nn.Module):
    r"""A time-dependent vector field :math:`h_\phi(t, z)`: an MLP on :math:`z` and the time features
    :math:`(t, \cos \pi k t, \sin \pi k t)_{k=1..F}` (``freqs`` = :math:`F`), with smooth activations (the
    trace needs second derivatives to train). ``t`` is a number, a 0-dimensional tensor, or one time per
    row of ``z``."""

    freqs: Tensor  # a buffer: the frequencies of the time features

    def __init__(self, dim: int, hidden: int = 64, depth: int = 3, activation: type[nn.Module] = nn.SiLU,
                 freqs: int = 0) -> None:
        super().__init__()
        self.dim = positive_int(dim, "dim")
        if not isinstance(freqs, int) or freqs < 0:
            raise ValueError(f"freqs must be a non-negative integer; got {freqs!r}")
        self.register_buffer("freqs", torch.arange(1, freqs + 1) * torch.pi)
        self.net = mlp(dim + 1 + 2 * freqs, dim, hidden, depth, activation=activation)

    def forward(self, t: Tensor | float, z: Tensor) -> Tensor:
        """The velocity at times ``t`` (a number or one per row) of the points ``z`` (batch, dim)."""
        return self.net(torch.cat([z, time_features(t, z, self.freqs)], dim=1))


def divergence_exact(v: Tensor, z: Tensor, create_graph: bool = False) -> Tensor:
    r"""The exact trace
    :math:`\operatorname{tr}\frac{\partial v}{\partial z} = \sum_i \frac{\partial v_i}{\partial z_i}` of
    ``v = h(z)`` (computed with ``z`` requiring grad): one backward pass per dimension, so :math:`O(d)` passes.
    Returns shape (batch,)."""
    parts = [torch.autograd.grad(v[:, i].sum(), z, create_graph=create_graph, retain_graph=True)[0][:, i]
             for i in range(z.shape[1])]
    return torch.stack(parts, dim=1).sum(dim=1)


def divergence_hutchinson(v: Tensor, z: Tensor, eps: Tensor, create_graph: bool = False) -> Tensor:
    r"""Hutchinson's estimator (FFJORD): :math:`\varepsilon^\top \frac{\partial v}{\partial z}\varepsilon`,
    unbiased for the trace when :math:`E[\varepsilon\varepsilon^\top] = I`, at the cost of one
    vector-Jacobian product whatever :math:`d`. Returns shape (batch,)."""
    (vjp,) = torch.autograd.grad(v, z, eps, create_graph=create_graph, retain_graph=True)
    return (vjp * eps).sum(dim=1)


TRACES = ("exact", "hutchinson")


class CNF(Bijection):
    r"""The flow map of :math:`\dot z = h_\phi(t, z)` between :math:`t=1` (data) and :math:`t=0` (latent).

    ``forward(x)`` solves from :math:`t=1` to :math:`t=0` and returns :math:`z_0` with
    :math:`\log|\det \partial z_0/\partial x| = -\int_0^1 \operatorname{tr}\frac{\partial h}{\partial z}\,dt`;
    ``inverse(z)`` solves from 0 to 1.

    Args:
        field: the vector field ``h(t, z)``; if it has a method ``velocity_and_divergence(t, z)`` (as
            OT-Flow's has, in closed form), the exact trace comes from it.
        dim: the dimension of ``z``.
        method: a fixed-step solver of :mod:`dgm_course.ode` (``"euler"``, ``"midpoint"``, ``"rk4"``) with
            ``steps`` steps, or an adaptive one (``"dopri5"``) with tolerances ``rtol``, ``atol``.
        trace: ``"exact"`` or ``"hutchinson"`` (one Gaussian :math:`\varepsilon` per solve, held fixed
            along the trajectory).
        adjoint: with an adaptive method, gradients by the adjoint method.

    ``evaluations`` is the number of evaluations of ``h`` a solve costs: ``steps`` times the fixed-step method's
    evaluations per step, or for an adaptive method the number the last solve used (0 before any).
    """

    def __init__(self, field: nn.Module, dim: int, method: str = "rk4", steps: int = 8, rtol: float = 1e-5,
                 atol: float = 1e-5, trace: str = "exact", adjoint: bool = False) -> None:
        super().__init__(dim)
        one_of(trace, TRACES, "trace")
        self.field = field
        self.trace, self.adjoint = trace, adjoint
        self.steps, self.rtol, self.atol = positive_int(steps, "steps"), rtol, atol
        self._evaluations = 0
        self.set_solver(method, steps, rtol, atol)

    def set_solver(self, method: str, steps: int | None = None, rtol: float | None = None,
                   atol: float | None = None) -> CNF:
        """Change how the ODE is solved (say, a few RK4 steps to train and dopri5 to evaluate); options
        left at ``None`` keep their values. Returns the CNF."""
        one_of(method, sorted(ode.SOLVERS) + list(ode.ADAPTIVE), "method")
        if self.adjoint and method not in ode.ADAPTIVE:
            raise ValueError(f"adjoint=True needs an adaptive method ({list(ode.ADAPTIVE)}); got {method!r}")
        self.method = method
        self.steps = positive_int(steps, "steps") if steps is not None else self.steps
        self.rtol = rtol if rtol is not None else self.rtol
        self.atol = atol if atol is not None else self.atol
        self._evaluations = self.steps * ode.SOLVERS[method].evaluations if method in ode.SOLVERS else 0
        return self

    @property
    def evaluations(self) -> int:
        """Evaluations of ``h`` per solve (the class docstring)."""
        return self._evaluations

    def _velocity_and_divergence(self, t: Tensor, z: Tensor, eps: Tensor | None, graph: bool) -> tuple[Tensor, Tensor]:
        fused = getattr(self.field, "velocity_and_divergence", None)  # a field that knows its divergence (OT-Flow's)
        if eps is None and fused is not None:
            return fused(t, z)
        with torch.enable_grad():
            if not z.requires_grad:  # no history to keep: a fresh leaf to differentiate against
                z = z.detach().requires_grad_(True)
            v = self.field(t, z)
            div = divergence_exact(v, z, graph) if eps is None else divergence_hutchinson(v, z, eps, graph)
        return v, div

    def augmented(self, eps: Tensor | None = None) -> Callable[[Tensor, Tensor], Tensor]:
        r"""The right-hand side of the augmented ODE for the state :math:`(z_t, \ell_t)` (the last column
        is :math:`\ell`): :math:`(h(t, z_t),\ \operatorname{tr}\frac{\partial h}{\partial z}(t, z_t))`."""

        def rhs(t: Tensor, state: Tensor) -> Tensor:
            graph = torch.is_grad_enabled()
            v, div = self._velocity_and_divergence(t, state[:, :-1], eps, graph)
            out = torch.cat([v, div[:, None]], dim=1)
            return out if graph else out.detach()

        return rhs

    def _solve(self, x: Tensor, t0: float, t1: float) -> tuple[Tensor, Tensor]:
        self._check(x)
        eps = torch.randn_like(x) if self.trace == "hutchinson" else None
        state = torch.cat([x, x.new_zeros(len(x), 1)], dim=1)
        rhs = self.augmented(eps)
        if self.method in ode.SOLVERS:
            state = ode.solve(rhs, state, t0, t1, self.steps, self.method)
        else:
            state, self._evaluations = ode.solve_adaptive(rhs, state, t0, t1, self.method, self.rtol, self.atol,
                                                          self.adjoint, tuple(self.field.parameters()))
        return state[:, :-1], state[:, -1]

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Data to latent: the ODE solved from :math:`t = 1` to 0, with the integrated divergence as log-determinant."""
        return self._solve(x, 1.0, 0.0)

    def inverse(self, z: Tensor) -> tuple[Tensor, Tensor]:
        """Latent to data: the ODE solved from :math:`t = 0` to 1, with the integrated divergence as log-determinant."""
        return self._solve(z, 0.0, 1.0)

    def invert(self, z: Tensor) -> Tensor:
        r"""Latent to data without the log-determinant: :math:`\dot z = h(t, z)` alone from :math:`t = 0` to 1, no
        divergence (which costs a backward pass per dimension, or a closed form, at every evaluation)."""
        self._check(z)
        if self.method in ode.SOLVERS:
            return ode.solve(self.field, z, 0.0, 1.0, self.steps, self.method)
        z, self._evaluations = ode.solve_adaptive(self.field, z, 0.0, 1.0, self.method, self.rtol, self.atol,
                                                  self.adjoint, tuple(self.field.parameters()))
        return z

    @torch.no_grad()
    def trajectory(self, z: Tensor, steps: int = 50, method: str = "rk4") -> Tensor:
        """The path of latent points ``z`` from :math:`t=0` to the data at :math:`t=1`, ``steps + 1`` states
        stacked along the first dimension (for pictures and animations)."""
        self._check(z)
        return ode.solve(self.field, z, 0.0, 1.0, steps, method, trajectory=True)


def cnf(dim: int, hidden: int = 64, depth: int = 3, **solver: object) -> Flow:
    """A continuous normalizing flow: a :class:`TimeField` MLP and a :class:`CNF` solved with ``solver``
    options (``method``, ``steps``, ``rtol``, ``atol``, ``trace``, ``adjoint``)."""
    return Flow(CNF(TimeField(dim, hidden, depth), dim, **solver))  # type: ignore[arg-type]
