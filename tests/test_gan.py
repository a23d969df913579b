"""GANs: the losses against hand-computed values, the optimal discriminator and the JS divergence, the
gradient penalty's interpolation and norm, clipping, mode coverage, and a short training run."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from dgm_course.data import toy2d
from dgm_course.gan import (GAN, clip_weights, critic_loss, dcgan_discriminator, dcgan_generator, discriminator_loss,
                            gradient_penalty, minimax_generator_loss, mlp_discriminator, mlp_generator,
                            nonsaturating_generator_loss, wasserstein_generator_loss)
from dgm_course.metrics import mode_coverage
from dgm_course.training import fit

D64 = torch.float64


def test_losses_equal_hand_computed_values():
    real, fake = torch.tensor([2.0, 0.0]), torch.tensor([-1.0, 1.0])
    d_real, d_fake = torch.sigmoid(real), torch.sigmoid(fake)
    # -E log d(x) - E log(1 - d(g(z))): d(2) = 0.8808, d(0) = 0.5, d(-1) = 0.2689, d(1) = 0.7311
    expected = -(math.log(0.880797) + math.log(0.5)) / 2 - (math.log(1 - 0.268941) + math.log(1 - 0.731059)) / 2
    assert float(discriminator_loss(real, fake)) == pytest.approx(expected, rel=1e-5)
    assert float(minimax_generator_loss(fake)) == pytest.approx(float(torch.log(1 - d_fake).mean()), rel=1e-6)
    assert float(nonsaturating_generator_loss(fake)) == pytest.approx(float(-torch.log(d_fake).mean()), rel=1e-6)
    assert float(discriminator_loss(real, fake)) == pytest.approx(
        float(-(torch.log(d_real).mean() + torch.log(1 - d_fake).mean())), rel=1e-6)
    assert float(critic_loss(torch.tensor([3.0, 1.0]), torch.tensor([0.5, -0.5]))) == -2.0
    assert float(wasserstein_generator_loss(torch.tensor([0.5, -1.5]))) == 0.5
    # no log(0): a confident discriminator gives finite losses
    assert math.isfinite(float(discriminator_loss(torch.tensor([200.0]), torch.tensor([-200.0]))))


def test_minimax_loss_saturates_and_the_nonsaturating_one_does_not():
    """d(g(z)) -> 0 (logit -8): the minimax generator gradient is ~ d = 3e-4, the non-saturating ~ 1."""
    logit = torch.tensor([-8.0], requires_grad=True)
    (g_minimax,) = torch.autograd.grad(minimax_generator_loss(logit), logit)
    (g_ns,) = torch.autograd.grad(nonsaturating_generator_loss(logit), logit)
    assert abs(float(g_minimax)) < 1e-3 and abs(float(g_ns)) > 0.99


def test_optimal_discriminator_gives_the_jensen_shannon_divergence():
    """On a grid, for two 1-D densities: the value J(d) = int p log d + q log(1 - d) is largest at
    d* = p / (p + q), where it equals 2 JS(p || q) - log 4."""
    x = torch.linspace(-12, 12, 200_001, dtype=D64)
    dx = float(x[1] - x[0])
    p = torch.exp(-0.5 * x**2) / math.sqrt(2 * math.pi)
    q = 0.5 * torch.exp(-0.5 * ((x - 2) / 0.7) ** 2) / (0.7 * math.sqrt(2 * math.pi)) \
        + 0.5 * torch.exp(-0.5 * ((x + 1.5) / 1.3) ** 2) / (1.3 * math.sqrt(2 * math.pi))

    def value(d):
        return float(((p * torch.log(d) + q * torch.log1p(-d)) * dx).sum())

    m = (p + q) / 2
    js = 0.5 * float((p * torch.log(p / m) * dx).sum()) + 0.5 * float((q * torch.log(q / m) * dx).sum())
    d_star = p / (p + q)
    assert value(d_star) == pytest.approx(2 * js - math.log(4), abs=1e-8)
    for bump in (lambda d: d.clamp(0.02, 0.98), lambda d: torch.sigmoid(torch.logit(d) + 0.3),
                 lambda d: torch.full_like(d, 0.5)):
        assert value(bump(d_star)) < value(d_star)
    assert value(torch.full_like(x, 0.5)) == pytest.approx(-math.log(4), abs=1e-8)  # JS = 0 would give this


def test_gradient_penalty_interpolates_per_example_and_takes_the_norm_over_all_pixels():
    """Critic c(x) = ||x||^2 / 2 has gradient x: the penalty must equal mean (||x_hat|| - 1)^2 with
    x_hat = eps_i x_i + (1 - eps_i) x~_i, eps_i one draw per example, the norm over (c, h, w)."""
    critic = lambda x: 0.5 * (x**2).flatten(1).sum(1)  # noqa: E731
    gen = torch.Generator().manual_seed(0)
    real = torch.randn(6, 2, 3, 3, generator=gen, dtype=D64)
    fake = torch.randn(6, 2, 3, 3, generator=gen, dtype=D64)
    got = gradient_penalty(critic, real, fake, generator=torch.Generator().manual_seed(1))
    eps = torch.rand(6, generator=torch.Generator().manual_seed(1), dtype=D64)[:, None, None, None]
    mixed = eps * real + (1 - eps) * fake
    expected = ((mixed.flatten(1).norm(dim=1) - 1) ** 2).mean()
    torch.testing.assert_close(got, expected)
    # a 1-Lipschitz linear critic with unit gradient has zero penalty; its gradient reaches the critic
    linear = nn.Linear(5, 1, bias=False).double()
    with torch.no_grad():
        linear.weight.copy_(torch.tensor([[0.6, 0.8, 0.0, 0.0, 0.0]]))
    assert float(gradient_penalty(linear, torch.randn(4, 5, dtype=D64), torch.randn(4, 5, dtype=D64)).detach()) < 1e-12
    with torch.no_grad():
        linear.weight.mul_(2)
    penalty = gradient_penalty(linear, torch.randn(4, 5, dtype=D64), torch.randn(4, 5, dtype=D64))
    (grad,) = torch.autograd.grad(penalty, linear.weight)
    assert float(penalty.detach()) == pytest.approx(1.0) and float(grad.norm()) > 0
    with pytest.raises(ValueError, match="same shape"):
        gradient_penalty(linear, torch.zeros(4, 5), torch.zeros(3, 5))


def test_clipping_keeps_every_critic_weight_in_range():
    critic = mlp_discriminator(2, hidden=16)
    with torch.no_grad():
        for p in critic.parameters():
            p.normal_(0, 1)
    clip_weights(critic, 0.01)
    assert all(float(p.detach().abs().max()) <= 0.01 + 1e-8 for p in critic.parameters())  # float32 rounding
    gan = GAN(mlp_generator(2, 2, hidden=16), critic, 2)
    fit(gan, gan.phases("wgan-clip", clip=0.05, lr_d=0.1), lambda n, g: torch.randn(n, 2, generator=g), steps=5,
        batch_size=32, progress=False)
    assert all(float(p.detach().abs().max()) <= 0.05 + 1e-8 for p in critic.parameters())


def test_mode_coverage_counts_modes_and_high_quality_samples():
    means, std = toy2d.modes("25gaussians")
    gen = torch.Generator().manual_seed(0)
    perfect = toy2d.sample("25gaussians", 2500, gen)
    modes, quality = mode_coverage(perfect, means, std)
    assert modes == 25 and quality > 0.98  # 3 sigma holds 98.9% of a 2-D Gaussian
    collapsed = means[7] + std * torch.randn(2500, 2, generator=gen)
    assert mode_coverage(collapsed, means, std)[0] == 1
    between = (means[:25] + 1.0)  # halfway between modes: far from all of them
    assert mode_coverage(between, means, std) == (0, 0.0)
    assert mode_coverage(perfect[:19 * 25], means, std, min_count=20)[0] < 25  # needs 20 per mode
    with pytest.raises(ValueError, match="not a Gaussian mixture"):
        toy2d.modes("moons")


def test_dcgan_shapes():
    g, d = dcgan_generator(16, (1, 28, 28), channels=8), dcgan_discriminator((1, 28, 28), channels=8)
    x = g(torch.randn(4, 16)).detach()
    assert x.shape == (4, 1, 28, 28) and 0 <= float(x.min()) and float(x.max()) <= 1
    assert d(x).shape == (4, 1)
    with pytest.raises(ValueError, match="divisible by 4"):
        dcgan_generator(16, (1, 10, 10))


@pytest.mark.parametrize(("objective", "n_critic"), [("nonsaturating", 1), ("wgan-gp", 5)])
def test_a_short_run_on_eight_gaussians_spreads_the_samples_over_the_modes(objective, n_critic):
    torch.manual_seed(0)
    gan = GAN(mlp_generator(2, 2, hidden=64), mlp_discriminator(2, hidden=64, spectral_norm=objective != "wgan-gp"),
              2)
    fit(gan, gan.phases(objective, lr_g=1e-3, lr_d=1e-3, n_critic=n_critic, betas=(0.5, 0.9)),
        lambda n, g: toy2d.sample("8gaussians", n, g), steps=600, batch_size=256, progress=False)
    means, std = toy2d.modes("8gaussians")
    with torch.no_grad():
        modes, quality = mode_coverage(gan.sample(2000, torch.Generator().manual_seed(1)), means, std)
    assert modes >= 6 and quality > 0.5, (modes, quality)


def test_bad_options_are_named():
    gan = GAN(mlp_generator(2, 2), mlp_discriminator(2, pack=2), 2)
    with pytest.raises(ValueError, match="unknown objective 'lsgan'"):
        gan.phases("lsgan")
    with pytest.raises(ValueError, match="divisible by pack = 2"):
        gan.discriminator(torch.zeros(3, 2))
    assert gan.discriminator(torch.zeros(4, 2)).shape == (2, 1)
