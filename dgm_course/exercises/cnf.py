"""Checkers for the exercises of the continuous-flows chapter."""

from __future__ import annotations

import math

import torch
from torch import Tensor

from .. import ode
from .core import Case, Report, compare


def _field(t: Tensor, z: Tensor) -> Tensor:
    r"""A test problem with a known solution: :math:`\dot z = z\cos t`, so :math:`z_t = z_0 e^{\sin t}`."""
    return z * torch.cos(t)


def _rotation(t: Tensor, z: Tensor) -> Tensor:
    return torch.stack([-z[:, 1], z[:, 0]], dim=1) * (1 + t)


def check_rk4_step(step: ode.Step) -> Report:
    r"""Check a student's ``step(h, t, z, dt)`` of the classical Runge-Kutta method: one step agrees with
    the reference on several fields and inputs (1e-10, float64), and, solving :math:`\dot z = z\cos t` on
    [0, 2], the log-log slope of the error against the step size is within 0.2 of 4."""
    gen = torch.Generator().manual_seed(0)
    z = torch.randn(5, 2, generator=gen, dtype=torch.float64)
    t, dt = torch.tensor(0.3, dtype=torch.float64), torch.tensor(0.1, dtype=torch.float64)
    cases = [
        Case((_field, t, z, dt), "dz/dt = z cos t, t = 0.3, dt = 0.1"),
        Case((_rotation, t, z, dt), "a rotation whose speed grows with t"),
        Case((_rotation, t, z, -dt), "a negative step (backward in time)"),
    ]
    report = compare(step, ode.rk4_step, cases, name="rk4_step", atol=1e-10, rtol=1e-10,
                     hint="k2 and k3 are taken at t + dt/2 from z + dt/2 * k1 and z + dt/2 * k2; "
                          "k4 at t + dt from z + dt * k3; weights 1, 2, 2, 1 over 6.")
    z0 = torch.tensor([[1.0, -0.5]], dtype=torch.float64)
    exact = z0 * math.exp(math.sin(2.0))
    report.checks += 1
    try:
        _, slope = ode.convergence(step, _field, z0, 0.0, 2.0, exact, steps=(8, 16, 32, 64))
    except Exception as err:  # noqa: BLE001 - the student's error is the message
        report.failures.append(f"order: solving dz/dt = z cos t raised {type(err).__name__}: {err}")
        return report
    if not abs(slope - 4) <= 0.2:
        report.failures.append(f"order: the error shrinks like dt^{slope:.2f}; RK4 should give dt^4")
    return report
