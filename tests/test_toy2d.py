import math

import pytest
import torch

from dgm_course.data import toy2d
from dgm_course.metrics import energy_test, integrate_2d


@pytest.mark.parametrize("name", toy2d.NAMES)
def test_sample_shape_dtype_and_reproducibility(name):
    a = toy2d.sample(name, 500, torch.Generator().manual_seed(3))
    b = toy2d.sample(name, 500, torch.Generator().manual_seed(3))
    c = toy2d.sample(name, 500, torch.Generator().manual_seed(4))
    assert a.shape == (500, 2) and a.dtype == torch.float32
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert torch.isfinite(a).all()


@pytest.mark.parametrize("name", toy2d.NAMES)
def test_density_integrates_to_one(name):
    bound = toy2d.BOUNDS[name] + 1
    mass = integrate_2d(lambda x: toy2d.log_density(name, x), bound, n=800 if name == "25gaussians" else 400)
    assert mass == pytest.approx(1.0, abs=1e-8)  # the densities are exact: only the quadrature's error remains


@pytest.mark.parametrize("name", toy2d.NAMES)
def test_samples_follow_the_density(name):
    """Monte Carlo estimate of the entropy, -mean log p(x) over samples, matches entropy() within 4 SE:
    the sampler and the density describe the same distribution."""
    x = toy2d.sample(name, 40_000, torch.Generator().manual_seed(0)).double()
    logp = toy2d.log_density(name, x)
    assert torch.isfinite(logp).all(), "a sample fell where the density is zero"
    se = float(logp.std()) / math.sqrt(len(logp))
    assert abs(float(-logp.mean()) - toy2d.entropy(name)) < 4 * se + 1e-9


def test_checkerboard_is_uniform_on_black_squares():
    assert toy2d.entropy("checkerboard") == pytest.approx(math.log(32), abs=1e-12)
    inside = torch.tensor([[-3.0, -3.0], [-1.0, -1.0], [1.0, 1.0], [3.0, 3.0], [-3.0, 1.0], [1.0, -3.0]])
    outside = torch.tensor([[-1.0, -3.0], [1.0, 3.0], [3.0, 1.0], [4.5, 0.0], [-3.0, 3.0]])
    assert torch.allclose(toy2d.log_density("checkerboard", inside), torch.full((6,), -math.log(32)))
    assert torch.isinf(toy2d.log_density("checkerboard", outside)).all()
    x = toy2d.sample("checkerboard", 10_000, torch.Generator().manual_seed(0))
    assert x.abs().max() <= 4
    # every one of the 8 squares gets about 1/8 of the points
    cells = torch.floor(x / 2).long() + 2
    counts = torch.bincount(cells[:, 0] * 4 + cells[:, 1], minlength=16)
    assert (counts > 0).sum() == 8
    assert counts[counts > 0].float().div(len(x)).sub(1 / 8).abs().max() < 0.015


def test_25gaussians_entropy_matches_closed_form():
    # the modes are 40 standard deviations apart, so the mixture entropy is ln 25 + the Gaussian's
    sigma = 0.05
    assert toy2d.entropy("25gaussians") == pytest.approx(math.log(25) + math.log(2 * math.pi * math.e * sigma**2),
                                                         abs=1e-6)


def test_samples_pass_the_energy_test_against_themselves_and_fail_against_others(gen):
    a = toy2d.sample("8gaussians", 400, gen)
    b = toy2d.sample("8gaussians", 400, gen)
    c = toy2d.sample("rings", 400, gen)
    assert energy_test(a, b, 199, gen)[1] > 0.01
    assert energy_test(a, c, 199, gen)[1] <= 0.01


def test_log_density_keeps_dtype_and_checks_input():
    x32 = torch.zeros(3, 2)
    assert toy2d.log_density("moons", x32).dtype == torch.float32
    with pytest.raises(ValueError, match="unknown toy data set 'spiral'.*checkerboard"):
        toy2d.sample("spiral", 10)
    with pytest.raises(ValueError, match=r"shape \(batch, 2\); got shape \(3, 3\)"):
        toy2d.log_density("moons", torch.zeros(3, 3))
    with pytest.raises(ValueError, match=r"got shape \(2,\)"):
        toy2d.log_density("moons", torch.zeros(2))
    with pytest.raises(ValueError, match="NaN"):
        toy2d.log_density("moons", torch.tensor([[0.0, float("nan")]]))
    with pytest.raises(ValueError, match="positive integer"):
        toy2d.sample("moons", 0)
