r"""Solving :math:`\frac{dz_t}{dt} = h(t, z_t)` from :math:`t_0` to :math:`t_1`.

The fixed-step solvers are written out for the course, each one step of a few lines with its order
:math:`p`: the global error after :math:`n` steps of size :math:`\Delta t = (t_1 - t_0)/n` shrinks like
:math:`\Delta t^{p}`. Adaptive solvers (dopri5) and the adjoint method come from torchdiffeq.

A vector field is any callable ``h(t, z)`` with ``t`` a 0-dimensional tensor and ``z`` a tensor; it returns
a tensor of the shape of ``z``. The state may be any tensor (a batch of points, or points with extra
columns such as a running log-determinant).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
from torch import Tensor, nn

from ._checks import one_of, positive_int

Field = Callable[[Tensor, Tensor], Tensor]
Step = Callable[[Field, Tensor, Tensor, Tensor], Tensor]  # step(h, t, z, dt) -> z after one step


def euler_step(h: Field, t: Tensor, z: Tensor, dt: Tensor) -> Tensor:
    r"""One explicit Euler step, order 1: :math:`z + \Delta t\, h(t, z)`."""
    return z + dt * h(t, z)


def midpoint_step(h: Field, t: Tensor, z: Tensor, dt: Tensor) -> Tensor:
    r"""One explicit midpoint step, order 2:
    :math:`z + \Delta t\, h\big(t + \tfrac{\Delta t}{2},\ z + \tfrac{\Delta t}{2} h(t, z)\big)`."""
    return z + dt * h(t + dt / 2, z + dt / 2 * h(t, z))


def rk4_step(h: Field, t: Tensor, z: Tensor, dt: Tensor) -> Tensor:
    r"""One classical Runge-Kutta step, order 4:

    .. math::
        k_1 = h(t, z),\quad k_2 = h(t + \tfrac{\Delta t}{2}, z + \tfrac{\Delta t}{2} k_1),\quad
        k_3 = h(t + \tfrac{\Delta t}{2}, z + \tfrac{\Delta t}{2} k_2),\quad k_4 = h(t + \Delta t, z + \Delta t\, k_3),

        z + \tfrac{\Delta t}{6}(k_1 + 2k_2 + 2k_3 + k_4).
    """
    k1 = h(t, z)
    k2 = h(t + dt / 2, z + dt / 2 * k1)
    k3 = h(t + dt / 2, z + dt / 2 * k2)
    k4 = h(t + dt, z + dt * k3)
    return z + dt / 6 * (k1 + 2 * k2 + 2 * k3 + k4)


@dataclass(frozen=True)
class Solver:
    """A fixed-step method: its step, its order and its evaluations of ``h`` per step."""

    name: str
    step: Step
    order: int
    evaluations: int


SOLVERS: dict[str, Solver] = {
    "euler": Solver("euler", euler_step, order=1, evaluations=1),
    "midpoint": Solver("midpoint", midpoint_step, order=2, evaluations=2),
    "rk4": Solver("rk4", rk4_step, order=4, evaluations=4),
}
ADAPTIVE = ("dopri5", "bosh3", "dopri8")


def solver(method: str) -> Solver:
    """The fixed-step solver called ``method``; a ``ValueError`` lists the known ones."""
    one_of(method, sorted(SOLVERS), "fixed-step method", f"adaptive ones, {', '.join(ADAPTIVE)}, go through "
           "solve_adaptive")
    return SOLVERS[method]


def solve(h: Field, z0: Tensor, t0: float, t1: float, steps: int, method: str | Step = "rk4",
          trajectory: bool = False) -> Tensor:
    r"""Integrate :math:`\dot z = h(t, z)` from ``z0`` at ``t0`` to ``t1`` in ``steps`` equal steps
    (``t1 < t0`` integrates backward in time) of ``method``: a name in :data:`SOLVERS` or a step function
    ``step(h, t, z, dt)``. Returns :math:`z_{t_1}`, or with ``trajectory`` the ``steps + 1`` states
    stacked along a new first dimension."""
    step = method if callable(method) else solver(method).step
    steps = positive_int(steps, "steps")
    times = torch.linspace(float(t0), float(t1), steps + 1, dtype=z0.dtype, device=z0.device)
    z, states = z0, [z0]
    for i in range(steps):
        z = step(h, times[i], z, times[i + 1] - times[i])
        if trajectory:
            states.append(z)
    return torch.stack(states) if trajectory else z


class _Counted(nn.Module):
    """Wraps a vector field and counts its evaluations (an ``nn.Module`` so that the adjoint sees its
    parameters)."""

    def __init__(self, h: Field) -> None:
        super().__init__()
        self.h = h
        self.evaluations = 0

    def forward(self, t: Tensor, z: Tensor) -> Tensor:
        self.evaluations += 1
        return self.h(t, z)


def solve_adaptive(h: Field, z0: Tensor, t0: float, t1: float, method: str = "dopri5", rtol: float = 1e-5,
                   atol: float = 1e-5, adjoint: bool = False,
                   parameters: tuple[Tensor, ...] | None = None) -> tuple[Tensor, int]:
    r"""Integrate :math:`\dot z = h(t, z)` from ``t0`` to ``t1`` with torchdiffeq's adaptive ``method``,
    which picks its step sizes so that the estimated local error stays below ``atol + rtol |z|``.

    With ``adjoint``, gradients come from solving the adjoint ODE backward in time (Chen et al. 2018)
    instead of backpropagating through the solver's operations: memory stays constant in the number of
    steps. The adjoint needs the trained ``parameters`` (those of ``h`` when ``h`` is a module).

    Returns :math:`z_{t_1}` and the number of evaluations of ``h`` in the forward solve.
    """
    import torchdiffeq  # a dependency of the package; imported here so that importing ode stays light

    one_of(method, ADAPTIVE, "adaptive method", f"fixed-step ones, {', '.join(sorted(SOLVERS))}, go through solve")
    counted = _Counted(h)
    times = torch.tensor([float(t0), float(t1)], dtype=z0.dtype, device=z0.device)
    options = dict(method=method, rtol=rtol, atol=atol)
    if adjoint:
        if parameters is None:
            parameters = tuple(h.parameters()) if isinstance(h, nn.Module) else ()
        z = torchdiffeq.odeint_adjoint(counted, z0, times, adjoint_params=tuple(parameters), **options)
    else:
        z = torchdiffeq.odeint(counted, z0, times, **options)
    return z[-1], counted.evaluations


def convergence(method: str | Step, h: Field, z0: Tensor, t0: float, t1: float, exact: Tensor,
                steps: tuple[int, ...] = (16, 32, 64, 128)) -> tuple[list[float], float]:
    r"""The global error :math:`\max|z_n - z(t_1)|` of ``method`` with each number of ``steps``, and the
    empirical order: the least-squares slope of :math:`\log(\text{error})` against :math:`\log \Delta t`
    (a method of order :math:`p` has slope :math:`p`)."""
    errors = [float((solve(h, z0, t0, t1, n, method) - exact).abs().max()) for n in steps]
    log_dt = torch.log(torch.tensor([abs(t1 - t0) / n for n in steps], dtype=torch.float64))
    log_err = torch.log(torch.tensor(errors, dtype=torch.float64))
    centred = log_dt - log_dt.mean()
    slope = float((centred * (log_err - log_err.mean())).sum() / (centred**2).sum())
    return errors, slope
