"""GANs: the losses against hand-computed values, the optimal discriminator and the JS divergence, the
gradient penalty's interpolation and norm, clipping, mode coverage, the recipes and their evaluation, short
training runs, and the exercise checkers."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from dgm_course.data import toy2d
from dgm_course.exercises.gan import check_discriminator_loss, check_gradient_penalty
from dgm_course.gan import (
    BEST,
    GAN,
    LADDER,
    TEXTBOOK,
    Recipe,
    clip_weights,
    critic_loss,
    dcgan_discriminator,
    dcgan_generator,
    discriminator_loss,
    evaluate_2d,
    gradient_penalty,
    minimax_generator_loss,
    mlp_discriminator,
    mlp_generator,
    nonsaturating_generator_loss,
    train_2d,
    train_images,
    wasserstein_generator_loss,
)
from dgm_course.metrics import mode_coverage, score_2d
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
    fit(gan, Recipe("wgan-clip", clip=0.05, lr_d=0.1, steps=5).phases(gan), lambda n, g: torch.randn(n, 2, generator=g),
        steps=5, batch_size=32, progress=False)
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
    fit(gan, Recipe(objective, lr_g=1e-3, lr_d=1e-3, n_critic=n_critic, betas=(0.5, 0.9), steps=600).phases(gan),
        lambda n, g: toy2d.sample("8gaussians", n, g), steps=600, batch_size=256, progress=False)
    means, std = toy2d.modes("8gaussians")
    with torch.no_grad():
        modes, quality = mode_coverage(gan.sample(2000, torch.Generator().manual_seed(1)), means, std)
    assert modes >= 6 and quality > 0.5, (modes, quality)


def test_bad_options_are_named():
    gan = GAN(mlp_generator(2, 2), mlp_discriminator(2, pack=2), 2)
    with pytest.raises(ValueError, match="unknown objective 'lsgan'"):
        Recipe("lsgan").phases(gan)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="divisible by pack = 2"):
        gan.discriminator(torch.zeros(3, 2))
    assert gan.discriminator(torch.zeros(4, 2)).shape == (2, 1)


class _DataGenerator(nn.Module):
    """A generator that is the data: z0 picks one of the 25 modes (through the normal CDF), z1:3 is the noise."""

    def __init__(self, collapse: bool = False) -> None:
        super().__init__()
        self.means, self.std = toy2d.modes("25gaussians")
        self.collapse = collapse
        self.dummy = nn.Parameter(torch.zeros(()))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        k = (0.5 * (1 + torch.erf(z[:, 0] / math.sqrt(2))) * 25).long().clamp(0, 24)
        k = torch.zeros_like(k) if self.collapse else k
        return self.means[k] + self.std * z[:, 1:3]


def test_evaluate_2d_on_a_generator_that_is_the_data_and_on_a_collapsed_one():
    """Samples of the data itself: all 25 modes, P(|N(0, I_2)| <= 3) = 1 - exp(-4.5) = 0.989 high quality, and an
    energy distance of two samples of one law (over 300 pairs of data samples of 2,500: median 0.0036, largest
    0.018); one mode only: 1 mode and a large distance."""
    perfect = evaluate_2d(GAN(_DataGenerator(), nn.Linear(2, 1), 3), "25gaussians")
    assert perfect["modes"] == 25
    assert abs(perfect["hq"] - (1 - math.exp(-4.5))) < 4 * math.sqrt(0.989 * 0.011 / 2500)
    assert 0 <= perfect["energy"] < 0.03
    collapsed = evaluate_2d(GAN(_DataGenerator(collapse=True), nn.Linear(2, 1), 3), "25gaussians")
    assert collapsed["modes"] == 1 and collapsed["hq"] > 0.97 and collapsed["energy"] > 1.0


def test_recipes_and_train_2d(tmp_path):
    assert LADDER["non-saturating, Adam 2e-4, batch 256"] == TEXTBOOK["nonsaturating"]
    assert BEST == TEXTBOOK["nonsaturating"].but(lr_g=1e-3, lr_d=1e-3, cosine=True, batch=1024, steps=8000)
    rungs = list(LADDER.values())  # each rung makes one change to the one before, and the last is BEST
    changed = [{f for f in Recipe.__dataclass_fields__ if getattr(a, f) != getattr(b, f)}
               for a, b in zip(rungs, rungs[1:])]
    assert changed == [{"lr_g", "lr_d"}, {"cosine"}, {"batch"}, {"steps"}] and rungs[-1] == BEST
    assert all(r.objective == name for name, r in TEXTBOOK.items())
    gan = BEST.build()
    discriminator, generator = BEST.but(steps=7).phases(gan)  # the recipe handed whole: its rates, its schedule
    assert discriminator.repeats == BEST.n_critic and generator.optimizer.param_groups[0]["lr"] == BEST.lr_g
    assert discriminator.scheduler.T_max == generator.scheduler.T_max == 7
    assert all(p.scheduler is None for p in TEXTBOOK["wgan-gp"].phases(gan))
    assert [p.repeats for p in TEXTBOOK["wgan-gp"].phases(gan)] == [5, 1]
    with pytest.raises(ValueError, match="unknown objective 'wgan'"):
        Recipe("wgan")
    with pytest.raises(ValueError, match="not a Gaussian mixture"):
        train_2d(BEST, "moons")
    recipe = BEST.but(hidden=32, steps=40, batch=64)
    shots: list[torch.Tensor] = []
    gan, history = train_2d(recipe, "8gaussians", seed=3, evaluate_every=10, snapshots=shots, progress=False,
                            checkpoint=tmp_path / "run.pt")
    assert [e["step"] for e in history.evaluations] == [10, 20, 30, 40] and len(shots) == 4
    assert all(s.shape == (2500, 2) for s in shots)
    # each evaluation is the judge's verdict on the samples it kept, and the last one is the returned model's
    for e, drawn in zip(history.evaluations, shots):
        assert {k: e[k] for k in ("modes", "hq", "energy")} == score_2d(drawn, "8gaussians")
    assert shots[-2].ne(shots[-1]).any()  # the model moved between evaluations
    assert {k: history.evaluations[-1][k] for k in ("modes", "hq", "energy")} == evaluate_2d(gan, "8gaussians")
    assert len(history.losses["discriminator"]) == len(history.losses["generator"]) == 40
    # the same seed gives the same run; the finished checkpoint returns it at once
    _, again = train_2d(recipe, "8gaussians", seed=3, evaluate_every=10, progress=False)
    assert again.losses == history.losses
    _, resumed = train_2d(recipe, "8gaussians", seed=3, evaluate_every=10, progress=False,
                          checkpoint=tmp_path / "run.pt")
    assert resumed.evaluations == history.evaluations


def test_exercise_checkers_accept_the_solutions_and_reject_common_mistakes():
    def loss(real, fake):
        return F.softplus(-real).mean() + F.softplus(fake).mean()

    def naive(real, fake):
        return -torch.log(torch.sigmoid(real)).mean() - torch.log(1 - torch.sigmoid(fake)).mean()

    assert check_discriminator_loss(loss).passed
    report = check_discriminator_loss(naive)
    assert not report.passed and "200" in str(report)

    def penalty(critic, real, fake, eps):
        eps = eps.reshape((-1,) + (1,) * (real.ndim - 1))
        mixed = (eps * real + (1 - eps) * fake).requires_grad_(True)
        (grad,) = torch.autograd.grad(critic(mixed).sum(), mixed, create_graph=True)
        return ((grad.flatten(1).norm(dim=1) - 1) ** 2).mean()

    def per_pixel_norm(critic, real, fake, eps):  # the norm over the last axis only: wrong for images
        eps = eps.reshape((-1,) + (1,) * (real.ndim - 1))
        mixed = (eps * real + (1 - eps) * fake).requires_grad_(True)
        (grad,) = torch.autograd.grad(critic(mixed).sum(), mixed, create_graph=True)
        return ((grad.norm(dim=-1) - 1) ** 2).mean()

    def no_graph(critic, real, fake, eps):
        return penalty(critic, real, fake, eps).detach().requires_grad_(True)

    assert check_gradient_penalty(penalty).passed
    report = check_gradient_penalty(per_pixel_norm)
    assert not report.passed and "convolutional" in str(report)
    assert not check_gradient_penalty(no_graph).passed


@pytest.mark.parametrize("theta", [0.5, 2.0])
def test_a_critic_trained_with_the_gradient_penalty_estimates_the_wasserstein_distance(theta):
    """P = U[0, 1]^2, Q = P shifted by (theta, 0): W1(P, Q) = theta, also for disjoint supports (theta = 2), where
    JS is stuck at log 2. The penalty is soft: over critics c(x) = s x_1 the objective s theta - lambda (s - 1)^2
    peaks at s = 1 + theta / (2 lambda), so the trained dual must come out at theta (1 + theta / (2 lambda)).
    (In 1-D the penalty walls off the critic's sign: a slope of the wrong sign cannot turn without passing
    through slope 0, where the penalty is lambda; in 2-D it can turn around.)"""
    torch.manual_seed(0)
    critic = mlp_discriminator(2, hidden=64, depth=2)
    opt = torch.optim.Adam(critic.parameters(), lr=1e-3, betas=(0.5, 0.9))
    shift, lam = torch.tensor([theta, 0.0]), 10.0
    for _ in range(800):
        x, y = torch.rand(256, 2), torch.rand(256, 2) + shift
        loss = critic_loss(critic(x), critic(y)) + lam * gradient_penalty(critic, x, y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        x, y = torch.rand(20000, 2), torch.rand(20000, 2) + shift
        estimate = float(critic(x).mean() - critic(y).mean())
    assert estimate == pytest.approx(theta * (1 + theta / (2 * lam)), rel=0.05)


def test_train_images_tracks_the_energy_distance_to_test_images():
    gen = torch.Generator().manual_seed(0)
    train, test = torch.rand(64, 1, 8, 8, generator=gen), torch.rand(40, 1, 8, 8, generator=gen)
    recipe = Recipe(hidden=4, latent=3, steps=6, batch=16)
    gan, history, floor = train_images(recipe, train, test, n_track=32, evaluate_every=3, progress=False)
    assert [e["step"] for e in history.evaluations] == [3, 6]
    # the last evaluation is the returned model's 32 samples from the tracking codes (seed 1) against 32 test images
    with torch.no_grad():
        tracked = gan.sample(32, torch.Generator().manual_seed(1)).flatten(1)
    # checked against dcor's energy distance, not against the call the code makes
    import dcor

    y = test[:32].flatten(1).double().numpy()
    assert history.evaluations[-1]["energy"] == pytest.approx(dcor.energy_distance(tracked.double().numpy(), y),
                                                              rel=1e-4)  # float32 sums against dcor's float64
    assert history.evaluations[0]["energy"] != history.evaluations[-1]["energy"]
    assert floor == pytest.approx(dcor.energy_distance(train[:32].flatten(1).double().numpy(), y), rel=1e-4)
    assert gan.sample(5).shape == (5, 1, 8, 8)
    with pytest.raises(ValueError, match="images"):
        train_images(recipe, train.flatten(1), test.flatten(1))
