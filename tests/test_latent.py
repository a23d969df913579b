"""The one latent distribution of the course (dgm_course.latent): draws and log-density."""

import pytest
import torch

from dgm_course import latent
from dgm_course.flows import realnvp
from dgm_course.gan import TEXTBOOK
from dgm_course.vae import mlp_vae


def test_log_prob_is_the_standard_normal_of_torch_distributions():
    z = torch.randn(7, 3, 2, 2, dtype=torch.float64)
    expected = torch.distributions.Normal(0.0, 1.0).log_prob(z).flatten(1).sum(1)
    assert torch.allclose(latent.log_prob(z), expected, atol=1e-12)
    with pytest.raises(ValueError, match=r"shape \(batch, \.\.\.\); got shape \(3,\)"):
        latent.log_prob(torch.zeros(3))


def test_a_cpu_generator_draws_the_same_points_for_a_model_on_any_device():
    on_cpu = latent.draw(5, 3, torch.zeros(1, dtype=torch.float64), torch.Generator().manual_seed(4))
    elsewhere = latent.draw(5, 3, torch.zeros(1, device="meta"), torch.Generator().manual_seed(4))
    assert elsewhere.device.type == "meta" and elsewhere.dtype == torch.float32 and elsewhere.shape == (5, 3)
    again = latent.draw(5, 3, torch.zeros(1, dtype=torch.float64), torch.Generator().manual_seed(4))
    assert on_cpu.dtype == torch.float64 and torch.equal(on_cpu, again)


def test_uniform_draws_fill_the_cube_with_the_uniform_laws_moments():
    """On [-b, b]^d: every point inside, mean 0 and variance b^2 / 3 per coordinate (within 5 standard errors),
    reproducible with a generator, in the dtype of ``like``; a bound that is not positive is refused."""
    b, n = 2.5, 200_000
    u = latent.uniform(n, 3, b, torch.zeros(1, dtype=torch.float64), torch.Generator().manual_seed(0))
    assert u.dtype == torch.float64 and u.shape == (n, 3) and u.abs().max() <= b
    var = b**2 / 3  # the variance of U[-b, b]; the fourth moment is b^4 / 5, so var(u^2) = b^4 (1/5 - 1/9)
    assert (u.mean(0).abs() < 5 * (var / n) ** 0.5).all()
    assert ((u**2).mean(0) - var).abs().max() < 5 * (b**4 * (1 / 5 - 1 / 9) / n) ** 0.5
    assert torch.equal(u, latent.uniform(n, 3, b, torch.zeros(1, dtype=torch.float64),
                                         torch.Generator().manual_seed(0)))
    with pytest.raises(ValueError, match="bound must be positive; got 0"):
        latent.uniform(4, 2, 0, torch.zeros(1))


@pytest.mark.parametrize("make", [lambda: realnvp(2, 2, 8), lambda: mlp_vae((1, 4, 4), latent=2, hidden=8),
                                  lambda: TEXTBOOK["nonsaturating"].but(hidden=8).build()])
def test_every_family_samples_through_the_one_draw(make):
    """Flows, VAEs and GANs alike: a CPU generator works for a model moved to another device (meta here; CUDA
    where there is one), and the same generator seed gives the same samples."""
    model = make()
    cpu = model.sample(4, torch.Generator().manual_seed(1))
    assert torch.equal(cpu, model.sample(4, torch.Generator().manual_seed(1)))
    model.to("meta")
    assert model.sample(4, torch.Generator().manual_seed(1)).device.type == "meta"
