"""The energy-distance generator and the course-wide comparison: the generator's loss is the unbiased energy
distance and training it matches a mixture; :func:`judge` measures a model that *is* the data as a perfect
model must measure (energy at the two-sample floor, the entropy as its NLL, every mode); every contender of
the table trains and is judged through the same code."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from dgm_course.compare import CONTENDERS, Contender, Trained, judge, train
from dgm_course.contract import NoDensity
from dgm_course.data import toy2d
from dgm_course.gan import TEXTBOOK
from dgm_course.gmmn import energy_generator
from dgm_course.metrics import energy_distance, mode_coverage, score_2d
from dgm_course.training import History, fit


def test_the_energy_generators_loss_is_the_unbiased_energy_distance_to_fresh_samples():
    g = energy_generator(2, 2, hidden=16)
    x = toy2d.sample("moons", 50, torch.Generator().manual_seed(0))
    torch.manual_seed(5)
    loss = g.loss(x)
    torch.manual_seed(5)
    expected = energy_distance(g.sample(50), x, unbiased=True)
    assert float(loss.detach()) == pytest.approx(float(expected.detach()), rel=1e-6)
    loss.backward()
    assert all(torch.isfinite(p.grad).all() for p in g.parameters())
    with pytest.raises(ValueError, match=r"shape \(batch, 2\)"):
        g.loss(torch.zeros(4, 3))


@pytest.mark.slow
def test_an_energy_generator_learns_the_8_gaussians():
    torch.manual_seed(0)
    g = energy_generator(2, 2, hidden=64)
    data = toy2d.sample("8gaussians", 4000, torch.Generator().manual_seed(0))
    before = float(energy_distance(g.sample(1000).detach(), data[:1000]))
    fit(g, g.loss, data, steps=400, batch_size=256, lr=2e-3, cosine=True, seed=0, progress=False)
    after = float(energy_distance(g.sample(1000).detach(), data[:1000]))
    assert after < before / 10 and after < 0.05


class _Data(nn.Module):
    """A 'model' that draws from the data set itself and knows its exact log-density: it satisfies the contract."""

    density, evaluations = "exact", 0

    def __init__(self, dataset: str) -> None:
        super().__init__()
        self.dataset, self.dummy = dataset, nn.Parameter(torch.zeros(()))

    def objective(self, steps: int):
        return lambda x: self.dummy * x.sum()

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        return toy2d.sample(self.dataset, n, generator)

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        return toy2d.log_density(self.dataset, x.double())


class _OneMode(NoDensity, nn.Module):
    """A 'model' that puts all its mass on the first mode of the 8 Gaussians, with no density."""

    evaluations = 0

    def __init__(self) -> None:
        super().__init__()
        self.dummy = nn.Parameter(torch.zeros(()))

    def objective(self, steps: int):
        return lambda x: self.dummy * x.sum()

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        means, std = toy2d.modes("8gaussians")
        return means[0] + std * torch.randn(n, 2, generator=generator, dtype=torch.float64)


def test_judge_gives_a_perfect_model_the_floors():
    """Samples of the data itself: the energy test does not reject (p > 0.01 at this seed, a level-0.01 test),
    the held-out NLL is the entropy within 4 standard errors, all 8 modes, 1 - e^-4.5 high quality."""
    data = _Data("8gaussians")
    trained = Trained(CONTENDERS["GAN"], "8gaussians", data, History(losses={}, device="cpu"))
    r = judge(trained, n=2000, n_permutations=199)
    assert r["p"] > 0.01 and 0 <= r["energy"] < 0.01
    assert abs(r["nll"] - toy2d.entropy("8gaussians")) < 4 * r["nll_se"]
    assert r["modes"] == 8 and abs(r["hq"] - (1 - math.exp(-4.5))) < 4 * math.sqrt(0.989 * 0.011 / 2000)
    assert trained.samples.shape == (2000, 2) and r["sample_s"] >= 0
    # a model that puts all its mass on one mode: rejected, one mode, large distance
    collapsed = Trained(CONTENDERS["GAN"], "8gaussians", _OneMode(), History(losses={}, device="cpu"))
    bad = judge(collapsed, n=100, n_permutations=99)
    assert bad["p"] == pytest.approx(0.01) and bad["energy"] > 0.5 and math.isnan(bad["nll"])


def test_the_held_out_points_are_fixed_and_fresh():
    assert torch.equal(toy2d.held_out("moons", 10), toy2d.held_out("moons", 10))
    assert not torch.equal(toy2d.held_out("moons", 10), toy2d.sample("moons", 10, torch.Generator().manual_seed(0)))


def test_score_is_the_one_judge_of_samples():
    """metrics.score_2d: the energy distance to as many held-out points, and the modes on a mixture only."""
    x = toy2d.sample("8gaussians", 500, torch.Generator().manual_seed(3))
    s = score_2d(x, "8gaussians")
    assert s["energy"] == pytest.approx(float(energy_distance(x.double(), toy2d.held_out("8gaussians", 500).double())))
    assert (s["modes"], s["hq"]) == mode_coverage(x, *toy2d.modes("8gaussians"))
    moons = score_2d(toy2d.sample("moons", 100), "moons")
    assert math.isnan(moons["modes"]) and math.isnan(moons["hq"]) and moons["energy"] >= 0
    with pytest.raises(ValueError, match=r"samples must have shape \(batch, 2\)"):
        score_2d(torch.zeros(5, 3), "moons")


def test_a_contender_is_a_builder_with_its_rate_or_a_gan_recipe_handed_whole():
    recipe = TEXTBOOK["nonsaturating"].but(hidden=16, cosine=True, batch=64)
    gan = Contender.gan("GAN-16", "5", 30, recipe)
    assert (gan.batch, gan.lr, gan.cosine) == (64, None, False)
    discriminator, generator = gan.make().objective(30)
    assert discriminator.scheduler.T_max == 30  # the recipe's schedule spans the run's steps
    wrong = {"GAN with a rate": Contender("GAN with a rate", "5", 5, 64, 1e-3, recipe.build),  # ignored by a game
             "VAE without a rate": Contender("VAE without a rate", "4", 5, 64, None, CONTENDERS["VAE"].make)}
    CONTENDERS.update(wrong)
    try:
        with pytest.raises(ValueError, match="phases bring their own optimizers"):
            train("GAN with a rate", "moons")
        with pytest.raises(ValueError, match="needs a learning rate"):  # not a silent default rate
            train("VAE without a rate", "moons")
    finally:
        for name in wrong:
            del CONTENDERS[name]


@pytest.mark.slow
@pytest.mark.parametrize("name", list(CONTENDERS))
def test_every_contender_trains_and_is_judged(name):
    trained = train(name, "8gaussians", scale=0.004, seed=0, progress=False)
    assert trained.history.seconds > 0 and len(trained.history.loss) >= 2
    r = judge(trained, n=300, n_permutations=19)
    # every number of the table is what it says, recomputed here from the samples judge kept
    test = toy2d.held_out("8gaussians", 300).double()
    assert r["energy"] == pytest.approx(float(energy_distance(trained.samples, test)), rel=1e-12)
    modes, hq = mode_coverage(trained.samples, *toy2d.modes("8gaussians"))
    assert (r["modes"], r["hq"]) == (modes, hq)
    assert r["p"] in {k / 20 for k in range(1, 21)}  # (1 + #) / (1 + B) with B = 19 permutations
    has_density = CONTENDERS[name].chapter in ("02_normalizing_flows", "03_continuous_flows",
                                                 "04_variational_autoencoders", "07_diffusion_models",
                                                 "10_energy_based_models")
    assert math.isfinite(r["nll"]) == has_density
    if has_density:
        log_prob = trained.model.log_prob
        with torch.no_grad():
            own = -log_prob(test.float()).double().mean()
        if trained.model.density in ("exact", "quadrature"):
            assert r["nll"] == pytest.approx(float(own), rel=1e-5)
        else:  # the VAE's bound is a Monte Carlo estimate: two draws agree within their standard errors
            assert abs(r["nll"] - float(own)) < 6 * r["nll_se"]


def test_train_rejects_unknown_names_and_bad_scales():
    with pytest.raises(ValueError, match="unknown model 'NICE'; choose one of: RealNVP"):
        train("NICE", "moons")
    with pytest.raises(ValueError, match="unknown toy data set 'spiral'"):
        train("GAN", "spiral")
    with pytest.raises(ValueError, match="scale must be a positive number"):
        train("GAN", "moons", scale=0)
