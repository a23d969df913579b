"""Every model kind of the course through the one contract (dgm_course.contract): its objective trains (a finite
loss with gradients, or a game's phases), a seeded draw reproduces, samples have the data's shape and dtype, the
log-density is finite where the model has one and integrates to one where it is exact (in the plane), the
evaluations per sample are what the sampler costs; and a family that satisfies the contract joins the course's table
with no adapter."""

from __future__ import annotations

import math

import pytest
import torch
from torch import Tensor, nn

from dgm_course import compare, contract, ebm
from dgm_course.autoregressive import MADE, CausalTransformer, PixelCNN
from dgm_course.contract import DENSITIES, Generative
from dgm_course.diffusion import Diffusion, Schedule, UNet
from dgm_course.flows import CNF, Flow, FlowMatching, TimeField, cnf, otflow, realnvp, spline_flow
from dgm_course.gan import TEXTBOOK
from dgm_course.gmmn import energy_generator
from dgm_course.training import Phase
from dgm_course.vae import conv_vae, mlp_vae

# Every model kind of the course at a few units: (build, the shape of one example, binary data?).
KINDS = {
    "RealNVP": (lambda: realnvp(2, 4, 16), (2,), False),
    "spline flow": (lambda: spline_flow(2, 2, 16), (2,), False),
    "CNF (RK4)": (lambda: cnf(2, 16, 2, method="rk4", steps=4), (2,), False),
    "CNF (dopri5)": (lambda: cnf(2, 16, 2, method="dopri5", rtol=1e-4, atol=1e-4), (2,), False),
    "OT-Flow": (lambda: otflow(2, width=8, steps=4, cost=0.01, hjb=0.05), (2,), False),
    "flow matching": (lambda: FlowMatching(TimeField(2, 16, 2), 2, steps=4, time_power=3.0), (2,), False),
    "VAE (Gaussian)": (lambda: mlp_vae((2,), 2, 16, likelihood="gaussian", noise=True, bound_samples=8), (2,),
                       False),
    "VAE (Bernoulli, convolutional)": (lambda: conv_vae((1, 8, 8), 2, 4, 16, bound_samples=4), (1, 8, 8), True),
    "GAN": (lambda: TEXTBOOK["nonsaturating"].but(hidden=16, cosine=True).build(), (2,), False),
    "DCGAN": (lambda: TEXTBOOK["wgan-gp"].but(hidden=4).build_dcgan((1, 8, 8)), (1, 8, 8), False),
    "WGAN (clipping)": (lambda: TEXTBOOK["wgan-clip"].but(hidden=16).build(), (2,), False),
    "diffusion (DDIM)": (lambda: Diffusion(TimeField(2, 16, 2), Schedule("linear"), sample_steps=5), (2,), False),
    "diffusion (ancestral, U-Net)": (lambda: Diffusion(UNet((1, 4, 4), 4), Schedule("cosine"), "velocity",
                                                       shape=(16,), sampler="ancestral", sample_steps=3), (16,),
                                     False),
    "diffusion (reverse SDE, score)": (lambda: Diffusion(TimeField(2, 16, 2), Schedule("linear"), "score",
                                                         sampler="euler-maruyama", sample_steps=4), (2,), False),
    "EBM": (lambda: ebm.EBM(ebm.EnergyMLP(2, 16, 2), ebm.ReplayBuffer(2, 64, bound=3.0), chain_steps=3,
                            sample_steps=5, grid_bound=5.0, grid=100), (2,), False),
    "energy generator": (lambda: energy_generator(2, 2, hidden=16), (2,), False),
    "MADE": (lambda: MADE(16, hidden=32), (16,), True),
    "PixelCNN": (lambda: PixelCNN(4, 4, channels=8, layers=2, kernel=3), (16,), True),
    "causal transformer": (lambda: CausalTransformer(16, width=16, heads=2, layers=1), (16,), True),
}


def _batch(shape: tuple[int, ...], binary: bool, n: int = 8) -> Tensor:
    x = torch.rand(n, *shape, generator=torch.Generator().manual_seed(0))
    return (x > 0.5).float() if binary else 2 * x - 1


@pytest.mark.parametrize("kind", list(KINDS))
def test_every_model_kind_satisfies_the_contract(kind):
    build, shape, binary = KINDS[kind]
    torch.manual_seed(0)
    model = build()
    assert contract.check(model) is model and isinstance(model, Generative)
    assert model.density in DENSITIES
    x = _batch(shape, binary)

    objective = model.objective(10)  # a run of 10 rounds
    if callable(objective):
        loss = objective(x)
        assert loss.shape == () and torch.isfinite(loss)
        loss.backward()
        grads = [p.grad for p in model.parameters() if p.grad is not None]
        assert grads and all(torch.isfinite(g).all() for g in grads)
    else:  # a game: its phases, each a finite loss of the batch
        assert all(isinstance(phase, Phase) for phase in objective) and len(objective) == 2
        assert all(torch.isfinite(phase.loss(x)) for phase in objective)

    with torch.no_grad():
        first = model.sample(5, torch.Generator().manual_seed(3))
        again = model.sample(5, torch.Generator().manual_seed(3))
        other = model.sample(5, torch.Generator().manual_seed(4))
    assert first.shape == (5, *shape) and first.dtype == torch.float32 and torch.isfinite(first).all()
    assert torch.equal(first, again) and not torch.equal(first, other)  # a seeded draw reproduces
    if binary and kind.startswith(("MADE", "PixelCNN", "causal")):
        assert set(first.unique().tolist()) <= {0.0, 1.0}
    assert isinstance(model.evaluations, int) and model.evaluations >= 1

    if model.density == "none":
        with pytest.raises(ValueError, match="has no density"):
            model.log_prob(x)
    else:
        with torch.no_grad():
            log_p = model.log_prob(x)
        assert log_p.shape == (len(x),) and torch.isfinite(log_p).all()


@pytest.mark.parametrize(("kind", "evaluations"), [
    ("RealNVP", 4), ("spline flow", 2), ("CNF (RK4)", 4 * 4), ("OT-Flow", 4 * 4), ("flow matching", 4 * 4),
    ("VAE (Gaussian)", 1), ("GAN", 1), ("diffusion (DDIM)", 5), ("EBM", 5), ("energy generator", 1), ("MADE", 16)])
def test_the_evaluations_are_what_a_sample_costs(kind, evaluations):
    """Couplings: one network each (permutations none); RK4: 4 per step; samplers and Langevin: one per step; an
    autoregressive model: one pass per coordinate."""
    assert KINDS[kind][0]().evaluations == evaluations


def test_an_adaptive_solver_counts_its_evaluations_when_it_samples():
    """dopri5's evaluations are not known in advance: 0 before a solve, then the count of the last solve; the
    sample solves the velocity alone, so it counts evaluations of the network, and draws what the full inverse
    (with its log-determinant) draws."""
    torch.manual_seed(0)
    flow = KINDS["CNF (dopri5)"][0]()
    assert flow.evaluations == 0
    with torch.no_grad():
        x = flow.sample(50, torch.Generator().manual_seed(1))
    assert flow.evaluations >= 6  # dopri5: at least one step of 6 evaluations
    z = torch.randn(50, 2, generator=torch.Generator().manual_seed(1))
    flow.bijection.set_solver("rk4", 20)
    with torch.no_grad():
        full, _ = flow.bijection.inverse(z)
        alone = flow.bijection.invert(z)
    assert torch.allclose(full, alone, atol=1e-6) and torch.allclose(x, full, atol=1e-3)


def _mass(log_prob, bound: float, n: int) -> float:
    """The integral of exp(log_prob) over [-bound, bound]^2 by the midpoint rule on an n x n grid."""
    h = 2 * bound / n
    ticks = -bound + h * (torch.arange(n) + 0.5)
    grid = torch.cartesian_prod(ticks, ticks)
    with torch.no_grad():
        log_p = torch.cat([log_prob(part) for part in grid.split(5000)])
    return float(torch.logsumexp(log_p.double(), 0).exp()) * h * h


@pytest.mark.parametrize("kind", ["RealNVP", "spline flow", "CNF (RK4)", "OT-Flow", "flow matching"])
def test_an_exact_density_integrates_to_one(kind):
    torch.manual_seed(0)
    model = KINDS[kind][0]()
    assert model.density == "exact"
    with torch.no_grad():
        model.log_prob(_batch((2,), False, 256))  # ActNorm's first batch sets its scale, as training's would
    assert _mass(model.log_prob, 20.0, 400) == pytest.approx(1.0, abs=0.005)


def test_a_bound_is_below_the_density_and_a_quadrature_normalises_on_its_square():
    """The IWAE bound: e^{L_k} is an unbiased estimate of p(x), so its grid integral is 1 up to Monte Carlo noise,
    while E[L_k] <= log p(x) (Jensen): the exponential of the bound averaged over draws integrates to less than 1,
    and less for fewer importance samples. The energy's log-density integrates to one on the grid it was normalised
    on."""
    torch.manual_seed(0)
    vae = mlp_vae((2,), 2, 16, likelihood="gaussian", bound_samples=2)
    assert vae.density == "bound"

    def averaged(k: int):
        vae.bound_samples = k
        return lambda x: torch.stack([vae.log_prob(x) for _ in range(16)]).mean(0)

    one, two, many = _mass(averaged(1), 8.0, 60), _mass(averaged(2), 8.0, 60), _mass(averaged(64), 8.0, 60)
    assert one < two < many < 1.0 and many > 0.95
    model = KINDS["EBM"][0]()
    assert model.density == "quadrature"
    assert _mass(model.log_prob, model.grid_bound, model.grid) == pytest.approx(1.0, abs=1e-6)  # the same grid


class Gaussian(nn.Module):
    """A family the course does not have: a Gaussian with a learned mean and diagonal scale. It satisfies the
    contract, and nothing else."""

    density, evaluations = "exact", 1

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.mean, self.log_scale = nn.Parameter(torch.zeros(dim)), nn.Parameter(torch.zeros(dim))

    def objective(self, steps: int):
        return lambda x: -self.log_prob(x).mean()

    def sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        z = torch.randn(n, len(self.mean), generator=generator)
        return self.mean + self.log_scale.exp() * z

    def log_prob(self, x: Tensor) -> Tensor:
        z = (x - self.mean) / self.log_scale.exp()
        return (-0.5 * z**2 - self.log_scale - 0.5 * math.log(2 * math.pi)).sum(dim=1)


def test_a_new_family_joins_the_table_with_no_adapter():
    """Trained on the moons by maximum likelihood, the Gaussian's held-out NLL is that of the moment-matched
    Gaussian; the judge reads its density and evaluations through the contract."""
    compare.CONTENDERS["Gaussian"] = compare.Contender("Gaussian", "none", 400, 512, 5e-2, lambda: Gaussian(2))
    try:
        trained = compare.train("Gaussian", "moons", seed=0, progress=False)
        r = compare.judge(trained, n=500, n_permutations=19)
    finally:
        del compare.CONTENDERS["Gaussian"]
    from dgm_course.data import toy2d

    data = toy2d.sample("moons", 100_000, torch.Generator().manual_seed(0)).double()
    fitted = 0.5 * torch.log(2 * math.pi * math.e * data.var(0)).sum()  # the entropy of the fitted Gaussian
    assert r["nll"] == pytest.approx(float(fitted), abs=0.05) and r["evaluations"] == 1
    assert r["p"] == pytest.approx(0.05)  # a Gaussian is not the moons: the energy test rejects at every permutation


def test_the_validator_says_what_is_missing():
    with pytest.raises(ValueError, match="is an nn.Module"):
        contract.check(lambda n, g: torch.zeros(n, 2))
    with pytest.raises(ValueError, match="Linear does not satisfy .* it lacks objective, sample, log_prob, density, "
                                         "evaluations"):
        contract.check(nn.Linear(2, 2))
    odd = Gaussian(2)
    odd.density = "approximate"
    with pytest.raises(ValueError, match="unknown Gaussian.density 'approximate'; choose one of: exact, bound"):
        contract.check(odd)
    gan = TEXTBOOK["nonsaturating"].build()
    gan.recipe = None
    with pytest.raises(ValueError, match="no recipe to train it"):
        gan.objective(10)


def test_every_contender_of_the_table_satisfies_the_contract():
    for contender in compare.CONTENDERS.values():
        assert isinstance(contract.check(contender.make()), Generative)
    assert isinstance(Flow(CNF(TimeField(2), 2)), Generative)


def test_a_composed_continuous_flow_samples_without_the_divergence(monkeypatch):
    """Compose inverts each layer alone: a CNF inside one solves the velocity only (no trace computed)."""
    import importlib

    from dgm_course.flows import Compose, ElementwiseAffine

    cnf_module = importlib.import_module("dgm_course.flows.cnf")  # (the package's name cnf is the function)
    torch.manual_seed(0)
    inner = CNF(TimeField(2, 8, 2), 2, method="rk4", steps=4)
    flow = Flow(Compose([inner, ElementwiseAffine(2)]))
    calls = []
    original = cnf_module.divergence_exact
    monkeypatch.setattr(cnf_module, "divergence_exact", lambda *a, **k: calls.append(1) or original(*a, **k))
    with torch.no_grad():
        x = flow.sample(20, torch.Generator().manual_seed(0))
    assert not calls and flow.evaluations == 16  # RK4, 4 steps, and the affine layer's none
    z = torch.randn(20, 2, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(x, flow.bijection.inverse(z)[0], atol=1e-6)


def test_the_objectives_settings_are_in_fits_fingerprint():
    """fit resumes a checkpoint only for the same run: two models that differ only by their objective's settings
    must have different fingerprints."""
    from dgm_course.checkpoint import describe_callable

    pairs = [(FlowMatching(TimeField(2, 8, 2), 2, time_power=1.0), FlowMatching(TimeField(2, 8, 2), 2, time_power=3.0)),
             (otflow(2, cost=1.0, hjb=1.0), otflow(2, cost=0.01, hjb=0.05)),
             (Diffusion(TimeField(2, 8, 2), Schedule("linear")), Diffusion(TimeField(2, 8, 2), Schedule("linear"),
                                                                          time_power=3.0, t_min=0.01))]
    for a, b in pairs:
        assert describe_callable(a.objective(10)) != describe_callable(b.objective(10))


def test_a_density_that_cannot_be_computed_says_none():
    image = Diffusion(TimeField(4, 8, 2), Schedule("linear"), shape=(1, 2, 2))
    assert image.density == "none" and contract.check(image) is image
    with pytest.raises(ValueError, match="computed on flat vectors"):
        image.log_prob(torch.zeros(3, 1, 2, 2))
    cube = ebm.EBM(ebm.EnergyMLP(3, 8, 2), ebm.ReplayBuffer(3, 16, bound=2.0))
    assert cube.density == "none"
    with pytest.raises(ValueError, match="grid of the plane"):
        cube.log_prob(torch.zeros(2, 3))
    with pytest.raises(ValueError, match="t_min must lie in"):
        Diffusion(TimeField(2, 8, 2), Schedule("linear"), t_min=2.0)


def test_a_contender_takes_a_builder_not_a_recipe():
    with pytest.raises(ValueError, match=r"use Contender.gan\(name, chapter, steps, recipe\)"):
        compare.Contender("GAN-16", "5", 30, 64, None, TEXTBOOK["nonsaturating"])
    with pytest.raises(ValueError, match="make must be a function"):
        compare.Contender("odd", "5", 30, 64, 1e-3, "realnvp")
