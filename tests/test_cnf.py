"""Continuous flows: the instantaneous change of variables, the traces, OT-Flow's closed form, flow matching."""

from __future__ import annotations

import math

import pytest
import scipy.stats
import torch
from torch import nn

from dgm_course.data import toy2d
from dgm_course.exercises.flows import check_bijection
from dgm_course.flows import CNF, Flow, OTField, TimeField, cnf, otflow
from dgm_course.flows.cnf import divergence_exact, divergence_hutchinson
from dgm_course.flows.matching import conditional_ot_path, flow_matching_loss
from dgm_course.flows.otflow import Potential, otflow_loss
from dgm_course.metrics import held_out_nll, integrate_2d
from dgm_course.training import fit

D64 = torch.float64


class Linear(nn.Module):
    """h(t, z) = A z: the flow map is exp(tA), its log-determinant t tr(A)."""

    def __init__(self, A):
        super().__init__()
        self.A = nn.Parameter(A)

    def forward(self, t, z):
        return z @ self.A.T


def random_field(dim=2, seed=0, scale=0.5):
    torch.manual_seed(seed)
    field = TimeField(dim, hidden=16, depth=2).double()
    with torch.no_grad():
        for p in field.parameters():
            p.mul_(scale / p.std().clamp_min(1e-3) if p.ndim > 1 else 1.0)
    return field


@pytest.mark.parametrize("method", ["rk4", "dopri5"])
def test_linear_field_log_determinant_is_t_trace(method):
    A = torch.tensor([[0.3, -1.0, 0.2], [0.5, -0.4, 0.0], [0.1, 0.2, 0.6]], dtype=D64)
    flow = CNF(Linear(A), 3, method=method, steps=40, rtol=1e-10, atol=1e-10)
    x = torch.randn(7, 3, dtype=D64)
    z, logabsdet = flow(x)
    torch.testing.assert_close(z, x @ torch.linalg.matrix_exp(-A).T, atol=1e-8, rtol=1e-8)
    torch.testing.assert_close(logabsdet, torch.full((7,), -float(torch.trace(A)), dtype=D64), atol=1e-8, rtol=0)
    x_back, logabsdet_inv = flow.inverse(z)
    torch.testing.assert_close(x_back, x, atol=1e-8, rtol=0)
    torch.testing.assert_close(logabsdet_inv, -logabsdet, atol=1e-8, rtol=0)


def test_exact_divergence_is_the_jacobian_trace():
    field = random_field(3)
    z = torch.randn(5, 3, dtype=D64, requires_grad=True)
    t = torch.tensor(0.4, dtype=D64)
    div = divergence_exact(field(t, z), z)
    for i in range(5):
        J = torch.autograd.functional.jacobian(lambda p: field(t, p[None])[0], z[i].detach())
        assert abs(float(div[i]) - float(torch.trace(J))) < 1e-12


def test_hutchinson_is_unbiased_and_noisy():
    field = random_field(4)
    z = torch.randn(1, 4, dtype=D64).expand(20000, 4).clone().requires_grad_(True)
    t = torch.tensor(0.7, dtype=D64)
    v = field(t, z)
    exact = float(divergence_exact(v, z)[0])
    eps = torch.randn(z.shape, dtype=D64, generator=torch.Generator().manual_seed(1))
    estimates = divergence_hutchinson(v, z, eps)
    se = float(estimates.std()) / math.sqrt(len(estimates))
    assert float(estimates.std()) > 1e-3  # a real estimator, not the exact trace in disguise
    assert abs(float(estimates.mean()) - exact) < 4 * se


def test_cnf_keeps_the_bijection_contract():
    """The whole harness (inverse, log-determinant against the autograd Jacobian, gradients) on a CNF
    solved adaptively at tight tolerances."""
    flow = CNF(TimeField(2, hidden=8, depth=2), 2, method="dopri5", rtol=1e-10, atol=1e-10)
    report = check_bijection(flow)
    assert report, str(report)


def test_otflow_closed_form_matches_autograd():
    torch.manual_seed(0)
    potential = Potential(3, width=8, rank=2).double()
    with torch.no_grad():
        potential.w.normal_()
    x = torch.randn(6, 3, dtype=D64, requires_grad=True)
    t = torch.rand(6, dtype=D64, requires_grad=True)
    grad, laplacian = potential.gradient_and_laplacian(t, x)
    phi = potential(t, x)
    gx, gt = torch.autograd.grad(phi.sum(), (x, t), create_graph=True)
    torch.testing.assert_close(grad, torch.cat([gx, gt[:, None]], dim=1), atol=1e-12, rtol=1e-10)
    hessian_trace = sum(torch.autograd.grad(gx[:, i].sum(), x, retain_graph=True)[0][:, i] for i in range(3))
    torch.testing.assert_close(laplacian, hessian_trace, atol=1e-12, rtol=1e-10)
    field = OTField(3, width=8).double()
    v, div = field.velocity_and_divergence(0.3, x)
    torch.testing.assert_close(div, divergence_exact(field(0.3, x), x), atol=1e-12, rtol=1e-10)


def test_otflow_loss_adds_nonnegative_penalties():
    torch.manual_seed(0)
    flow = otflow(2, width=16, steps=4).double()
    x = toy2d.sample("moons", 256, torch.Generator().manual_seed(0)).double()
    with torch.no_grad():
        nll = float(flow.nll(x))
        assert float(otflow_loss(flow, x, cost=0.0, hjb=0.0)) == pytest.approx(nll, abs=1e-10)
        assert float(otflow_loss(flow, x, cost=1.0, hjb=0.0)) > nll
        assert float(otflow_loss(flow, x, cost=0.0, hjb=1.0)) > nll
    with pytest.raises(ValueError, match="otflow"):
        otflow_loss(cnf(2), x)


def test_conditional_ot_path_ends_and_velocity():
    gen = torch.Generator().manual_seed(0)
    x0, x1 = torch.randn(5, 2, generator=gen, dtype=D64), torch.randn(5, 2, generator=gen, dtype=D64)
    xt, _ = conditional_ot_path(x0, x1, torch.zeros(5, dtype=D64), sigma_min=0.01)
    torch.testing.assert_close(xt, x0)
    xt, _ = conditional_ot_path(x0, x1, torch.ones(5, dtype=D64), sigma_min=0.01)
    torch.testing.assert_close(xt, x1 + 0.01 * x0)
    t = torch.rand(5, generator=gen, dtype=D64)
    velocity = torch.autograd.functional.jacobian(lambda s: conditional_ot_path(x0, x1, s, 0.01)[0], t)
    torch.testing.assert_close(torch.einsum("nin->ni", velocity), conditional_ot_path(x0, x1, t, 0.01)[1])
    with pytest.raises(ValueError, match="one time per row"):
        conditional_ot_path(x0, x1, torch.zeros(3))


@pytest.mark.parametrize("time_power", [1.0, 3.0])
def test_flow_matching_loss_is_minimised_by_the_marginal_field(time_power):
    """For Gaussian data N(m, s^2 I) the marginal field of the path is known in closed form; the
    conditional loss, estimated with common random numbers, is lowest there, whatever the density of t."""
    m, s, sigma_min = torch.tensor([1.0, -2.0], dtype=D64), 0.5, 1e-3

    def marginal(t, x, shift=0.0, scale=1.0):
        a, b = 1 - (1 - sigma_min) * t, t * s  # x_t = a x0 + t m + b e: N(t m, (a^2 + b^2) I)
        da, db = -(1 - sigma_min), s
        rate = (a * da + b * db) / (a**2 + b**2)
        return m + scale * rate[:, None] * (x - t[:, None] * m) + shift

    def loss(**perturbation):
        gen = torch.Generator().manual_seed(0)
        x1 = m + s * torch.randn(200_000, 2, generator=gen, dtype=D64)
        return float(flow_matching_loss(lambda t, x: marginal(t, x, **perturbation), x1, sigma_min, gen, time_power))

    best = loss()
    for perturbation in ({"shift": 0.3}, {"shift": -0.3}, {"scale": 1.3}, {"scale": 0.7}):
        assert loss(**perturbation) > best + 0.02, perturbation


def test_flow_matching_times_follow_the_stated_density():
    """time_power k draws t = 1 - (1 - u)^k: P(t <= a) = 1 - (1 - a)^(1/k), checked by Kolmogorov-Smirnov."""
    seen = []
    field = lambda t, x: (seen.append(t), torch.zeros_like(x))[1]  # noqa: E731
    flow_matching_loss(field, torch.zeros(20_000, 2), generator=torch.Generator().manual_seed(0), time_power=3.0)
    t = seen[0].numpy()
    assert scipy.stats.kstest(t, lambda a: 1 - (1 - a) ** (1 / 3)).pvalue > 1e-3
    assert scipy.stats.kstest(t, "uniform").pvalue < 1e-6
    with pytest.raises(ValueError, match="time_power must be a positive number"):
        flow_matching_loss(field, torch.zeros(4, 2), time_power=0)


def test_densities_integrate_to_one_untrained_and_after_flow_matching():
    flow = Flow(CNF(random_field(2, scale=0.8), 2, method="rk4", steps=8)).double()
    assert integrate_2d(flow.log_prob, bound=7.0, n=160) == pytest.approx(1.0, abs=1e-2)

    torch.manual_seed(0)
    field = TimeField(2, hidden=64, depth=3)
    data = lambda n, g: toy2d.sample("moons", n, g)  # noqa: E731
    fit(field, lambda x: flow_matching_loss(field, x), data, steps=300, batch_size=256, lr=3e-3, progress=False)
    trained = Flow(CNF(field, 2, method="rk4", steps=10))
    assert integrate_2d(trained.log_prob, bound=7.0, n=160) == pytest.approx(1.0, abs=1e-2)


def test_held_out_nll_stays_above_the_entropy():
    torch.manual_seed(0)
    field = TimeField(2, hidden=64, depth=3)
    data = lambda n, g: toy2d.sample("checkerboard", n, g)  # noqa: E731
    fit(field, lambda x: flow_matching_loss(field, x), data, steps=300, batch_size=256, lr=3e-3, progress=False)
    flow = Flow(CNF(field, 2, method="rk4", steps=10))
    with torch.no_grad():
        nll, se = held_out_nll(flow.log_prob, toy2d.sample("checkerboard", 5000, torch.Generator().manual_seed(9)))
    assert nll > toy2d.entropy("checkerboard") - 3 * se
    # and below the best Gaussian's NLL, (d/2) log(2 pi e) + log det(S)/2: an untrained field (NLL about 7) fails
    x = toy2d.sample("checkerboard", 5000, torch.Generator().manual_seed(9)).double()
    gaussian = math.log(2 * math.pi * math.e) + 0.5 * float(torch.logdet(torch.cov(x.T)))
    assert nll + 3 * se < gaussian, (nll, gaussian)


def test_bad_options_and_inputs_are_named():
    with pytest.raises(ValueError, match="unknown method 'rk5'"):
        cnf(2, method="rk5")
    with pytest.raises(ValueError, match="unknown trace"):
        cnf(2, trace="exactly")
    with pytest.raises(ValueError, match="adaptive"):
        cnf(2, method="rk4", adjoint=True)
    with pytest.raises(ValueError, match="unknown method 'rk5'"):
        cnf(2).bijection.set_solver("rk5")
    flow = cnf(2, method="dopri5", rtol=1e-7, atol=1e-8)
    assert flow.bijection.set_solver("rk4", 12) is flow.bijection
    assert (flow.bijection.method, flow.bijection.steps, flow.bijection.rtol) == ("rk4", 12, 1e-7)
    with pytest.raises(ValueError, match=r"\(batch, 2\)"):
        cnf(2).log_prob(torch.zeros(4, 3))
    with pytest.raises(ValueError, match="NaN"):
        cnf(2).log_prob(torch.tensor([[0.0, float("nan")]]))
