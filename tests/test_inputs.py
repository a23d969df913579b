"""Bad input is refused with a message that names what was wrong and what to do, never silently wrong
(issue 23): each case here was accepted, or failed obscurely, before."""

import math

import pytest
import torch

from dgm_course.data import images, toy2d
from dgm_course.flows import AffineCoupling, spline_flow
from dgm_course.gan import Recipe
from dgm_course.metrics import energy_distance, held_out_nll, integrate_2d, mode_coverage, radial_power
from dgm_course.vae import mlp_vae


def test_metrics_refuse_what_they_would_get_wrong():
    x = torch.randn(20, 2, dtype=torch.float64)
    with pytest.raises(ValueError, match="x and y must have one dtype; got torch.float64 and torch.float32"):
        energy_distance(x, x.float())
    per_dimension = lambda z: -0.5 * z**2  # noqa: E731 - (n, d): not summed over the dimensions
    with pytest.raises(ValueError, match=r"one log-density per point, shape \(20,\); got \(20, 2\)"):
        held_out_nll(per_dimension, x)
    with pytest.raises(ValueError, match="one log-density per point"):
        integrate_2d(per_dimension, 3.0, n=10)
    means, std = toy2d.modes("8gaussians")
    for bad in (dict(std=-0.1), dict(std=std, within=0.0)):
        with pytest.raises(ValueError, match="std and within must be positive"):
            mode_coverage(x, means, **bad)
    with pytest.raises(ValueError, match="min_count must be a positive integer; got 0"):
        mode_coverage(x, means, std, min_count=0)
    with pytest.raises(ValueError, match=r"means must have shape \(batch, features\)"):
        mode_coverage(x, means[:, 0], std)
    with pytest.raises(ValueError, match="images is empty"):
        radial_power(torch.zeros(0, 1, 8, 8))


def test_flows_refuse_bounds_that_would_break_them():
    with pytest.raises(ValueError, match="scale_bound must be positive"):
        AffineCoupling(2, scale_bound=0)
    for bound in (0.0, -1.0):
        with pytest.raises(ValueError, match="bound must be positive"):
            spline_flow(2, 2, 8, bound=bound)


def test_image_helpers_refuse_nan_and_meaningless_levels():
    grey = torch.rand(2, 1, 4, 4)
    grey[0, 0, 0, 0] = math.nan
    for f in (images.binarize, images.dequantize):
        with pytest.raises(ValueError, match="NaN or infinite"):
            f(grey)
    for levels in (0, 1, 2.5):
        with pytest.raises(ValueError, match="levels must be a whole number >= 2"):
            images.dequantize(torch.rand(2, 1, 4, 4), levels=levels)


def test_vae_refuses_wrong_dtype_8_bit_images_and_zero_samples():
    vae = mlp_vae((1, 4, 4), latent=2, hidden=8, likelihood="gaussian")
    x = torch.rand(3, 1, 4, 4)
    with pytest.raises(ValueError, match=r"x is torch.float64 but the model's weights are torch.float32"):
        vae.elbo(x.double())
    with pytest.raises(ValueError, match="looks like 8-bit grey levels .* divide by 255"):
        vae.elbo(torch.randint(0, 256, (3, 1, 4, 4)).float())
    with pytest.raises(ValueError, match="samples must be a positive integer; got 0"):
        vae.elbo(x, samples=0)
    assert torch.isfinite(vae.elbo(x)).all()


@pytest.mark.parametrize("change, message", [(dict(lr_g=-1.0), "Recipe.lr_g must be positive"),
                                             (dict(steps=0), "Recipe.steps must be a positive integer"),
                                             (dict(betas=(0.5, 1.0)), "Recipe.betas must be two numbers in"),
                                             (dict(gp_weight=-1.0), "Recipe.gp_weight must be >= 0")])
def test_a_gan_recipe_refuses_impossible_settings(change, message):
    with pytest.raises(ValueError, match=message):
        Recipe("nonsaturating", **change)
