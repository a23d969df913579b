"""Variational autoencoders: the bounds against the exact evidence of the linear-Gaussian model, the closed
forms against Monte Carlo, the two gradient estimators against each other, and the models' contracts."""

from __future__ import annotations

import math

import pytest
import torch

from dgm_course.data import images
from dgm_course.training import fit
from dgm_course.vae import (
    conv_vae,
    gaussian_kl,
    gaussian_log_prob,
    kl_to_posterior,
    linear_gaussian_vae,
    log_evidence,
    mlp_vae,
    posterior,
    reparameterize,
    standard_normal_log_prob,
)

D64 = torch.float64


def mean_se(values: torch.Tensor, dim: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    return values.mean(dim), values.std(dim) / math.sqrt(values.shape[dim])


def test_closed_form_kl_equals_its_monte_carlo_estimate():
    gen = torch.Generator().manual_seed(0)
    mean = torch.randn(5, 3, generator=gen, dtype=D64)
    log_var = torch.randn(5, 3, generator=gen, dtype=D64)
    z = reparameterize(mean.expand(200_000, 5, 3), log_var.expand(200_000, 5, 3), gen)
    log_ratio = gaussian_log_prob(z.reshape(-1, 3), mean.repeat(200_000, 1), log_var.repeat(200_000, 1)) \
        - standard_normal_log_prob(z.reshape(-1, 3))
    estimate, se = mean_se(log_ratio.reshape(200_000, 5))
    exact = gaussian_kl(mean, log_var)
    assert ((estimate - exact).abs() < 4 * se).all(), (estimate, exact, se)
    assert torch.allclose(gaussian_kl(torch.zeros(2, 4), torch.zeros(2, 4)), torch.zeros(2))


def test_gaussian_log_prob_matches_torch_distributions():
    gen = torch.Generator().manual_seed(1)
    x, mean, log_var = (torch.randn(4, 3, generator=gen, dtype=D64) for _ in range(3))
    expected = torch.distributions.Normal(mean, torch.exp(0.5 * log_var)).log_prob(x).sum(1)
    torch.testing.assert_close(gaussian_log_prob(x, mean, log_var), expected)


def test_reparameterized_and_score_function_gradients_agree_with_the_exact_one():
    """d/dmu and d/dlog_var of E[z^2 + 3 z] for z ~ N(mu, e^v): exactly 2 mu + 3 and e^v. The
    reparameterized estimate differentiates through the samples, the score-function (REINFORCE) one
    weights f(z) by the gradient of log q(z); both must be unbiased (4 standard errors), and the
    reparameterized one has the smaller variance."""
    mu, v = 0.7, math.log(0.8)
    n = 200_000
    gen = torch.Generator().manual_seed(2)
    f = lambda z: z**2 + 3 * z  # noqa: E731
    exact = torch.tensor([2 * mu + 3, math.exp(v)], dtype=D64)

    # one copy of (mu, v) per sample, so that autograd returns every per-sample gradient at once
    mus = torch.full((n,), mu, dtype=D64, requires_grad=True)
    vs = torch.full((n,), v, dtype=D64, requires_grad=True)
    per_sample_reparam = torch.stack(torch.autograd.grad(f(reparameterize(mus, vs, gen)).sum(), (mus, vs)), dim=1)
    grad_reparam, se_reparam = mean_se(per_sample_reparam)

    with torch.no_grad():
        z = mu + math.exp(v / 2) * torch.randn(n, generator=gen, dtype=D64)
        score = torch.stack([(z - mu) / math.exp(v), 0.5 * ((z - mu) ** 2 / math.exp(v) - 1)], dim=1)
        per_sample_score = f(z)[:, None] * score
    estimate_score, se_score = mean_se(per_sample_score)
    assert ((grad_reparam - exact).abs() < 4 * se_reparam).all(), (grad_reparam, exact)
    assert ((estimate_score - exact).abs() < 4 * se_score).all(), (estimate_score, exact)
    assert (se_reparam < se_score).all()


@pytest.fixture(scope="module")
def linear():
    torch.manual_seed(0)
    vae = linear_gaussian_vae(dim=5, latent=2, scale=0.5, generator=torch.Generator().manual_seed(3)).double()
    x = torch.randn(4, 5, generator=torch.Generator().manual_seed(4), dtype=D64) * 1.5
    return vae, x


def test_the_exact_posterior_is_bayes_rule(linear):
    """p(z | x) proportional to p(z) p(x | z): the log-ratio of the two sides is the same at every z."""
    vae, x = linear
    mean, cov = posterior(vae, x)
    z = torch.randn(7, 4, 2, generator=torch.Generator().manual_seed(5), dtype=D64)
    log_post = torch.distributions.MultivariateNormal(mean, covariance_matrix=cov).log_prob(z)
    log_joint = vae.log_likelihood(x, z) + standard_normal_log_prob(z.reshape(-1, 2)).reshape(7, 4)
    torch.testing.assert_close(log_joint - log_post, log_evidence(vae, x).expand(7, 4))


def test_elbo_gap_equals_the_kl_to_the_true_posterior(linear):
    """log p(x) - ELBO(x) = KL(q(z|x) || p(z|x)): the Monte Carlo ELBO within 4 standard errors."""
    vae, x = linear
    gen = torch.Generator().manual_seed(6)
    with torch.no_grad():
        draws = torch.stack([vae.elbo(x, samples=1, generator=gen) for _ in range(20_000)])
        elbo, se = mean_se(draws)
        expected = log_evidence(vae, x) - kl_to_posterior(vae, x)
    assert ((elbo - expected).abs() < 4 * se).all(), (elbo, expected, se)
    assert (kl_to_posterior(vae, x) > 0.1).all()  # the encoder is not the posterior: the gap is real


def test_bounds_are_ordered_and_iwae_rises_to_the_evidence(linear):
    """ELBO <= IWAE_1 = ... <= IWAE_k <= log p(x) (each within 4 standard errors of 400 independent
    estimates), and the gap to log p(x) shrinks: at k = 1000 it is below a tenth of the ELBO's."""
    vae, x = linear
    gen = torch.Generator().manual_seed(7)
    log_p = log_evidence(vae, x)
    with torch.no_grad():
        bounds = {k: mean_se(torch.stack([vae.iwae_bound(x, k, generator=gen) for _ in range(400)]))
                  for k in (1, 10, 100, 1000)}
        elbo = mean_se(torch.stack([vae.elbo(x, generator=gen) for _ in range(400)]))
    assert ((bounds[1][0] - elbo[0]).abs() < 4 * torch.hypot(bounds[1][1], elbo[1])).all()  # same expectation
    ks = sorted(bounds)
    for small, large in zip(ks, ks[1:]):
        (a, sa), (b, sb) = bounds[small], bounds[large]
        assert (b > a - 4 * torch.hypot(sa, sb)).all(), (small, large)
    for k, (value, se) in bounds.items():
        assert (value < log_p + 4 * se).all(), k
    assert ((log_p - bounds[1000][0]) < 0.1 * (log_p - elbo[0])).all()


def test_evaluate_reports_the_test_elbo_and_the_iwae_nll_of_the_linear_model():
    """VAE.evaluate (chapter 4's scores) on 3,000 points around the linear model's decoder: the mean ELBO below
    the mean log-evidence by the mean KL to the posterior, the IWAE NLL (k = 200) above -log p(x) by less than a
    tenth of the ELBO's gap, each within 4 standard errors; the same seed gives the same numbers."""
    torch.manual_seed(0)
    vae = linear_gaussian_vae(dim=5, latent=2, scale=0.5, generator=torch.Generator().manual_seed(3)).double()
    with torch.no_grad():
        z = torch.randn(3000, 2, generator=torch.Generator().manual_seed(9), dtype=D64)
        x = vae.decode(z) + 0.5 * torch.randn(3000, 5, generator=torch.Generator().manual_seed(10), dtype=D64)
        log_p, kl = log_evidence(vae, x), kl_to_posterior(vae, x)
    elbo, nll, se = vae.evaluate(x, 200)
    n_log_p, n_log_p_se = float(-log_p.mean()), float(log_p.std() / math.sqrt(len(x)))
    assert abs(elbo - float((log_p - kl).mean())) < 4 * float((log_p - kl).std() / math.sqrt(len(x))) + 0.02
    assert -n_log_p - elbo > 0.1 and 0 <= nll - n_log_p < 0.1 * (-n_log_p - elbo) + 4 * n_log_p_se
    assert se == pytest.approx(n_log_p_se, rel=0.1)  # the IWAE bound's spread over x is the evidence's
    assert vae.evaluate(x, 200) == (elbo, nll, se)


def test_iwae_chunks_combine_into_one_bound(linear):
    """Taking the k draws in chunks must give the same bound (a log-mean-exp over all k weights, not an
    average of per-chunk bounds, which would be the lower L_chunk): equal means over 300 repeats."""
    vae, x = linear
    gen = torch.Generator().manual_seed(8)
    with torch.no_grad():
        chunked = mean_se(torch.stack([vae.iwae_bound(x, 60, chunk=7, generator=gen) for _ in range(300)]))
        whole = mean_se(torch.stack([vae.iwae_bound(x, 60, chunk=60, generator=gen) for _ in range(300)]))
        small = mean_se(torch.stack([vae.iwae_bound(x, 7, generator=gen) for _ in range(300)]))
    assert ((chunked[0] - whole[0]).abs() < 4 * torch.hypot(chunked[1], whole[1])).all()
    assert ((chunked[0] - small[0]) > 4 * torch.hypot(chunked[1], small[1])).any()  # and the test can tell


def test_bad_images_are_refused_with_a_clear_message():
    vae = mlp_vae((1, 8, 8), latent=2, hidden=16)
    with pytest.raises(ValueError, match=r"shape \(batch, 1, 8, 8\).*\(4, 64\).*reshape"):
        vae.elbo(torch.zeros(4, 64))
    with pytest.raises(ValueError, match=r"x\[None\]"):
        vae.elbo(torch.zeros(1, 8, 8))
    with pytest.raises(ValueError, match="binarize"):
        vae.elbo(torch.full((2, 1, 8, 8), 0.5))
    x = torch.zeros(2, 1, 8, 8)
    x[1, 0, 3, 3] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        vae.elbo(x)
    with pytest.raises(ValueError, match="unknown likelihood"):
        mlp_vae((1, 8, 8), likelihood="poisson")
    with pytest.raises(ValueError, match="divisible by 4"):
        conv_vae((1, 10, 10))
    gaussian = mlp_vae((1, 8, 8), latent=2, hidden=16, likelihood="gaussian")
    assert torch.isfinite(gaussian.elbo(torch.full((2, 1, 8, 8), 0.5))).all()  # grey levels are fine here


@pytest.mark.parametrize("build", [lambda: mlp_vae((1, 8, 8), latent=4, hidden=128),
                                   lambda: conv_vae((1, 8, 8), latent=4, channels=16, hidden=64)])
def test_training_on_digits_raises_the_test_bound(build):
    """A few hundred steps on binarized digits: the held-out ELBO rises by nats, and IWAE_50 >= ELBO."""
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(0)
    train = images.binarize(images.load("digits", "train", verbose=False).images, gen)
    test = images.binarize(images.load("digits", "test", verbose=False).images, gen)
    vae = build()
    with torch.no_grad():
        before = float(vae.elbo(test, samples=10).mean())
    fit(vae, vae.loss, train, steps=300, batch_size=128, lr=2e-3, progress=False)
    with torch.no_grad():
        after = float(vae.elbo(test, samples=10, generator=gen).mean())
        iwae = float(vae.iwae_bound(test, 50, generator=gen).mean())
        samples = vae.sample(16, generator=gen)
    assert after > before + 5, (before, after)
    assert iwae >= after - 0.05
    assert samples.shape == (16, 1, 8, 8) and 0 <= samples.min() and samples.max() <= 1
