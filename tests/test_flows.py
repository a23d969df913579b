"""Normalizing flows: every bijection through the one harness, densities that integrate to one, errors."""

from __future__ import annotations

import math

import pytest
import torch
from torch import Tensor, nn

from dgm_course.data import toy2d
from dgm_course.exercises.flows import bijection_failures, check_bijection, check_lognormal_log_prob, lognormal_log_prob
from dgm_course.flows import (
    ActNorm,
    AffineCoupling,
    Bijection,
    Compose,
    ElementwiseAffine,
    Flow,
    Permutation,
    SplineCoupling,
    rational_quadratic_spline,
    realnvp,
    spline_flow,
)
from dgm_course.metrics import held_out_nll, integrate_2d
from dgm_course.training import fit

LAYERS = {
    "elementwise-affine": lambda: ElementwiseAffine(3),
    "actnorm": lambda: ActNorm(3),
    "permutation-reverse": lambda: Permutation(4),
    "permutation-random": lambda: Permutation(5, generator=torch.Generator().manual_seed(1)),
    "affine-coupling-2d": lambda: AffineCoupling(2, hidden=16),
    "affine-coupling-5d-odd": lambda: AffineCoupling(5, hidden=16, parity=1),
    "spline-coupling-2d": lambda: SplineCoupling(2, hidden=16, bins=5, bound=3.0),
    "spline-coupling-3d-odd": lambda: SplineCoupling(3, hidden=16, parity=1),
    "mixed-composition": lambda: Compose(
        [ActNorm(4), AffineCoupling(4, hidden=8), Permutation(4), SplineCoupling(4, hidden=8, parity=1)]
    ),
    "realnvp": lambda: realnvp(2, n_layers=4, hidden=16).bijection,
    "spline-flow": lambda: spline_flow(3, n_layers=4, hidden=16).bijection,
}


@pytest.mark.parametrize("name", LAYERS)
def test_every_bijection_keeps_the_contract(name: str) -> None:
    report = check_bijection(LAYERS[name]())
    assert report.passed, str(report)
    assert report.checks >= 8


def test_composition_adds_log_determinants() -> None:
    torch.manual_seed(0)
    f1, f2 = AffineCoupling(2, hidden=8).double(), SplineCoupling(2, hidden=8, parity=1).double()
    for p in [*f1.parameters(), *f2.parameters()]:
        nn.init.normal_(p, std=0.3)
    x = torch.randn(50, 2, dtype=torch.float64)
    y1, ld1 = f1(x)
    y2, ld2 = f2(y1)
    y, ld = Compose([f1, f2])(x)
    torch.testing.assert_close(y, y2)
    torch.testing.assert_close(ld, ld1 + ld2)
    back, ld_back = Compose([f1, f2]).inverse(y)
    torch.testing.assert_close(back, x)
    torch.testing.assert_close(ld_back, -ld)


class _Broken(Bijection):
    """y = 2x with a configurable mistake."""

    def __init__(self, mistake: str) -> None:
        super().__init__(2)
        self.mistake = mistake
        self.a = nn.Parameter(torch.tensor(0.0))

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        scale = 2 * torch.exp(self.a) if self.mistake != "dead-parameter" else torch.tensor(2.0, dtype=x.dtype)
        ld = 2 * torch.log(scale).expand(len(x))
        if self.mistake == "wrong-logdet":
            ld = torch.log(scale).expand(len(x))
        if self.mistake == "nan":
            ld = ld + torch.log(x[:, 0] + 5)
        if self.mistake == "logdet-shape":
            ld = ld[:, None]
        return x * scale, ld

    def inverse(self, y: Tensor) -> tuple[Tensor, Tensor]:
        scale = 2 * torch.exp(self.a) if self.mistake != "dead-parameter" else torch.tensor(2.0, dtype=y.dtype)
        x = y / scale if self.mistake != "wrong-inverse" else y / (scale + 0.01)
        return x, -2 * torch.log(scale).expand(len(y))


@pytest.mark.parametrize(
    ("mistake", "message"),
    [
        ("wrong-logdet", "autograd Jacobian"),
        ("wrong-inverse", "inverse(forward(x))"),
        ("nan", "NaN or inf"),
        ("logdet-shape", "one number per sample"),
        ("dead-parameter", "no (finite, non-zero) gradient"),
    ],
)
def test_the_harness_catches_each_kind_of_mistake(mistake: str, message: str) -> None:
    layer = _Broken(mistake)
    if mistake == "dead-parameter":
        layer.b = nn.Parameter(torch.tensor(1.0))  # registered, never used
    _, failures = bijection_failures(layer)
    assert any(message in f for f in failures), failures
    assert check_bijection(_Broken("correct")).passed


def test_spline_is_identity_outside_its_interval_and_at_zero_parameters() -> None:
    x = torch.linspace(-6, 6, 121, dtype=torch.float64)
    zeros = torch.zeros(121, 4, dtype=torch.float64)
    y, ld = rational_quadratic_spline(x, zeros, zeros, zeros[:, :3], bound=3.0)
    torch.testing.assert_close(y, x)  # zero parameters: equal bins, unit derivatives
    torch.testing.assert_close(ld, torch.zeros_like(ld), atol=1e-6, rtol=0)
    gen = torch.Generator().manual_seed(0)
    w, h, d = (torch.randn(1, k, generator=gen, dtype=torch.float64).expand(121, k) for k in (4, 4, 3))  # one spline
    y, ld = rational_quadratic_spline(x, w, h, d, bound=3.0)
    outside = x.abs() > 3
    torch.testing.assert_close(y[outside], x[outside])
    assert (ld[outside] == 0).all()
    assert (y.diff() > 0).all(), "the spline must be strictly increasing"
    torch.testing.assert_close(y[x.abs() == 3], x[x.abs() == 3])  # the ends of the interval are fixed


def test_spline_inverse_is_exact_at_the_knots() -> None:
    gen = torch.Generator().manual_seed(2)
    w, h, d = (torch.randn(1, k, generator=gen, dtype=torch.float64).expand(9, k) for k in (8, 8, 7))
    from dgm_course.flows.splines import _knots

    _, y_knots = _knots(h[:1], 2.0)
    _, x_knots = _knots(w[:1], 2.0)
    x, ld = rational_quadratic_spline(y_knots[0], w, h, d, bound=2.0, inverse=True)
    torch.testing.assert_close(x, x_knots[0])
    assert torch.isfinite(ld).all()


def test_flow_direction_matches_a_gaussian() -> None:
    """Flow(ElementwiseAffine) with y = e^a x + b is the Gaussian N(-b e^{-a}, e^{-2a})."""
    layer = ElementwiseAffine(2).double()
    with torch.no_grad():
        layer.log_scale.copy_(torch.tensor([0.5, -1.0]))
        layer.shift.copy_(torch.tensor([1.0, 2.0]))
    flow = Flow(layer).double()
    std = torch.exp(-layer.log_scale.detach())
    mean = -layer.shift.detach() * std
    x = torch.randn(20, 2, dtype=torch.float64)
    expected = torch.distributions.Normal(mean, std).log_prob(x).sum(dim=1)
    torch.testing.assert_close(flow.log_prob(x), expected)
    with torch.no_grad():
        s = flow.sample(200_000, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(s.mean(0), mean, atol=0.02, rtol=0)
    torch.testing.assert_close(s.std(0), std, atol=0.02, rtol=0)


def test_sampling_is_reproducible_and_follows_dtype() -> None:
    flow = realnvp(2, n_layers=2, hidden=8)
    a = flow.sample(5, generator=torch.Generator().manual_seed(3))
    b = flow.sample(5, generator=torch.Generator().manual_seed(3))
    assert torch.equal(a, b) and a.shape == (5, 2) and a.dtype == torch.float32
    assert flow.double().sample(3).dtype == torch.float64


def _randomize(module: nn.Module, std: float, seed: int = 0) -> None:
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.add_(std * torch.randn(p.shape, generator=gen, dtype=p.dtype))


@pytest.mark.parametrize("make", [realnvp, spline_flow], ids=["realnvp", "spline"])
def test_untrained_density_integrates_to_one(make) -> None:
    flow = make(2, n_layers=4, hidden=16).double().eval()
    _randomize(flow, 0.1)
    with torch.no_grad():
        mass = integrate_2d(flow.log_prob, bound=10.0, n=500)
    assert abs(mass - 1) < 1e-2, mass


@pytest.mark.parametrize("make", [realnvp, spline_flow], ids=["realnvp", "spline"])
def test_trained_density_integrates_to_one_and_stays_above_the_entropy(make) -> None:
    torch.manual_seed(0)
    flow = make(2, n_layers=4, hidden=32)
    history = fit(flow, flow.nll, lambda n, g: toy2d.sample("checkerboard", n, g), steps=300, batch_size=256,
                  lr=3e-3, progress=False)
    assert history.loss[-1] < history.loss[0] - 0.3, "training should lower the NLL"
    flow = flow.double()
    mass = integrate_2d(flow.log_prob, bound=8.0, n=500)
    nll, se = held_out_nll(flow.log_prob, toy2d.sample("checkerboard", 20_000, torch.Generator().manual_seed(9)))
    assert abs(mass - 1) < 1e-2, mass
    assert nll > toy2d.entropy("checkerboard") - 4 * se  # KL(p || p_theta) >= 0
    # and it learnt more than the best Gaussian can (an untrained flow, or one stuck at a Gaussian, fails this)
    assert nll + 4 * se < _gaussian_nll(toy2d.sample("checkerboard", 20_000, torch.Generator().manual_seed(9))), nll


def _gaussian_nll(x: torch.Tensor) -> float:
    """The NLL of the Gaussian fitted to ``x`` (mean and covariance), on ``x`` itself: (d/2) log(2 pi e) +
    log det(S)/2."""
    d = x.shape[1]
    return 0.5 * d * math.log(2 * math.pi * math.e) + 0.5 * float(torch.logdet(torch.cov(x.double().T)))


def test_actnorm_initialises_once_from_the_first_batch() -> None:
    layer = ActNorm(2)
    x = torch.randn(500, 2) * torch.tensor([3.0, 0.5]) + torch.tensor([1.0, -2.0])
    y, _ = layer(x)
    torch.testing.assert_close(y.mean(0), torch.zeros(2), atol=1e-5, rtol=0)
    torch.testing.assert_close(y.std(0), torch.ones(2), atol=1e-5, rtol=0)
    reloaded = ActNorm(2)
    reloaded.load_state_dict(layer.state_dict())
    y2, _ = reloaded(x * 7)  # initialised by the checkpoint: not again by this batch
    torch.testing.assert_close(y2, layer(x * 7)[0])
    with pytest.raises(ValueError, match="2 or more rows"):
        ActNorm(2)(torch.ones(1, 2))


@pytest.mark.parametrize(
    ("x", "match"),
    [
        (torch.zeros(4, 3), r"shape \(batch, 2\); got shape \(4, 3\)"),
        (torch.zeros(4), r"shape \(batch, 2\); got shape \(4,\)"),
        (torch.zeros(2, 4, 2), r"shape \(batch, 2\); got shape \(2, 4, 2\)"),
        (torch.tensor([[0.0, 1.0], [float("nan"), 0.0]]), "NaN or infinite values in 1 row"),
    ],
)
def test_bad_input_names_expected_and_received(x: Tensor, match: str) -> None:
    flow = realnvp(2, n_layers=2, hidden=8)
    with pytest.raises(ValueError, match=match):
        flow.log_prob(x)
    if x.ndim != 2 or x.shape[1] != 2:
        with pytest.raises(ValueError, match=r"expects points of shape \(batch, 2\)"):
            flow.bijection.inverse(x)


def test_bad_construction_is_refused() -> None:
    with pytest.raises(ValueError, match="dim >= 2"):
        realnvp(1)
    with pytest.raises(ValueError, match="share one dimension"):
        Compose([ActNorm(2), ActNorm(3)])
    with pytest.raises(ValueError, match="n_layers must be a positive integer"):
        spline_flow(2, n_layers=0)
    with pytest.raises(ValueError, match="Flow needs a Bijection"):
        Flow(nn.Linear(2, 2))  # type: ignore[arg-type]


def test_lognormal_checker_accepts_the_formula_and_rejects_a_forgotten_jacobian() -> None:
    assert check_lognormal_log_prob(lognormal_log_prob).passed
    report = check_lognormal_log_prob(lambda x: -0.5 * torch.log(x) ** 2 - 0.5 * math.log(2 * math.pi))
    assert not report.passed and "expected" in str(report)
