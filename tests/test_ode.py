"""The ODE solvers: each reaches its order; adaptive solving and the adjoint agree with the exact answers."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from dgm_course import ode
from dgm_course.exercises.cnf import check_rk4_step

D64 = torch.float64


def cos_field(t, z):
    """dz/dt = z cos t, solved by z_t = z_0 exp(sin t)."""
    return z * torch.cos(t)


Z0 = torch.tensor([[1.0, -0.5, 2.0]], dtype=D64)
EXACT = Z0 * math.exp(math.sin(2.0))


@pytest.mark.parametrize("method", sorted(ode.SOLVERS))
def test_fixed_step_solvers_reach_their_order(method):
    errors, slope = ode.convergence(method, cos_field, Z0, 0.0, 2.0, EXACT, steps=(32, 64, 128, 256))
    assert errors == sorted(errors, reverse=True)
    assert abs(slope - ode.SOLVERS[method].order) < 0.2, (method, slope, errors)


def test_backward_solve_returns_to_the_start():
    z1 = ode.solve(cos_field, Z0, 0.0, 2.0, 200, "rk4")
    back = ode.solve(cos_field, z1, 2.0, 0.0, 200, "rk4")
    torch.testing.assert_close(back, Z0, atol=1e-9, rtol=0)


def test_trajectory_has_every_state():
    path = ode.solve(cos_field, Z0, 0.0, 2.0, 10, "midpoint", trajectory=True)
    assert path.shape == (11, 1, 3)
    torch.testing.assert_close(path[0], Z0)
    torch.testing.assert_close(path[-1], ode.solve(cos_field, Z0, 0.0, 2.0, 10, "midpoint"))


def test_linear_ode_matches_the_matrix_exponential():
    gen = torch.Generator().manual_seed(0)
    A = torch.randn(4, 4, generator=gen, dtype=D64) * 0.7
    z0 = torch.randn(6, 4, generator=gen, dtype=D64)
    z1, evaluations = ode.solve_adaptive(lambda t, z: z @ A.T, z0, 0.0, 1.5, "dopri5", rtol=1e-12, atol=1e-12)
    exact = z0 @ torch.linalg.matrix_exp(1.5 * A).T
    assert ((z1 - exact).norm() / exact.norm()) < 1e-6
    assert evaluations > 0


def test_adjoint_gradients_equal_backpropagated_ones():
    torch.manual_seed(0)
    field = nn.Sequential(nn.Linear(3, 16), nn.Tanh(), nn.Linear(16, 2)).double()

    def h(t, z):
        return field(torch.cat([z, t.expand(len(z), 1)], dim=1))

    z0 = torch.randn(5, 2, dtype=D64)
    grads = []
    for adjoint in (False, True):
        field.zero_grad()
        z1, _ = ode.solve_adaptive(h, z0, 0.0, 1.0, "dopri5", rtol=1e-10, atol=1e-10, adjoint=adjoint,
                                   parameters=tuple(field.parameters()))
        (z1**2).sum().backward()
        grads.append(torch.cat([p.grad.flatten() for p in field.parameters()]))
    torch.testing.assert_close(grads[1], grads[0], atol=1e-6, rtol=1e-6)
    assert grads[0].abs().max() > 1e-3


def test_unknown_methods_are_named():
    with pytest.raises(ValueError, match="unknown fixed-step method 'rk5'"):
        ode.solve(cos_field, Z0, 0.0, 1.0, 4, "rk5")
    with pytest.raises(ValueError, match="unknown adaptive method 'rk4'"):
        ode.solve_adaptive(cos_field, Z0, 0.0, 1.0, "rk4")
    with pytest.raises(ValueError, match="steps"):
        ode.solve(cos_field, Z0, 0.0, 1.0, 0, "rk4")


def test_rk4_checker_accepts_the_reference_and_names_mistakes():
    assert check_rk4_step(ode.rk4_step)

    def k4_at_midpoint(h, t, z, dt):
        k1 = h(t, z)
        k2 = h(t + dt / 2, z + dt / 2 * k1)
        k3 = h(t + dt / 2, z + dt / 2 * k2)
        k4 = h(t + dt / 2, z + dt * k3)
        return z + dt / 6 * (k1 + 2 * k2 + 2 * k3 + k4)

    report = check_rk4_step(k4_at_midpoint)
    assert not report and "order" in str(report)
    report = check_rk4_step(ode.midpoint_step)
    assert not report and "RK4 should give dt^4" in str(report)
    assert not check_rk4_step(lambda h, t, z, dt: 1 / 0)
