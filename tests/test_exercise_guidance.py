"""The guided-diffusion chapter's exercise: the guided score of a two-class Gaussian mixture. The reference is the
gradient of the exact log-densities, the package's guidance gives the same score from exact noise predictions, a
correct closed form passes, and each common slip fails with a message that names it."""

import pytest
import torch
from torch import distributions as D

from dgm_course.diffusion import Schedule, ddim, guided
from dgm_course.exercises.guidance import ExactLabelledMixture, _cases, check_guided_score, reference_guided_score


def closed_form(x, y, w, centres, tau, alpha_t, sigma_t, prior):
    """(1 + w) s(x | y) - w s(x), with s(x | k) = -(x - alpha_t c_k) / v_t and s(x) = sum_k p_t(k | x) s(x | k)."""
    v = alpha_t**2 * tau**2 + sigma_t**2
    diff = x[:, None, :] - alpha_t * centres[None]
    scores = -diff / v
    posterior = torch.softmax(prior.log() - (diff**2).sum(-1) / (2 * v), dim=1)
    conditional = scores[torch.arange(len(x)), y]
    unconditional = (posterior[..., None] * scores).sum(1)
    return (1 + w) * conditional - w * unconditional


def _torch_log_densities(centres, tau, alpha_t, sigma_t, prior):
    """log p_t(x | k) and log p_t(x) from torch.distributions (independent of the package's formula)."""
    std = (alpha_t**2 * tau**2 + sigma_t**2) ** 0.5
    components = D.Independent(D.Normal(alpha_t * centres, std), 1)
    mixture = D.MixtureSameFamily(D.Categorical(probs=prior), components)
    per_class = [D.Independent(D.Normal(alpha_t * centres[k], std), 1) for k in (0, 1)]
    return per_class, mixture


@pytest.mark.parametrize("index", range(len(_cases())))
def test_the_reference_is_autograds_gradient_of_the_exact_log_density(index):
    x, y, w, centres, tau, alpha_t, sigma_t, prior = _cases()[index].args
    per_class, mixture = _torch_log_densities(centres, tau, alpha_t, sigma_t, prior)
    z = x.clone().requires_grad_(True)
    (unconditional,) = torch.autograd.grad(mixture.log_prob(z).sum(), z)
    conditional = torch.stack([torch.autograd.grad(per_class[int(k)].log_prob(z[i]), z)[0][i]
                               for i, k in enumerate(y)])
    expected = (1 + w) * conditional - w * unconditional
    got = reference_guided_score(x, y, w, centres, tau, alpha_t, sigma_t, prior)
    torch.testing.assert_close(got, expected, atol=1e-10, rtol=1e-10)
    torch.testing.assert_close(closed_form(x, y, w, centres, tau, alpha_t, sigma_t, prior), expected,
                               atol=1e-10, rtol=1e-10)


@pytest.mark.parametrize("prior", [None, [0.7, 0.3]])
def test_the_packages_guidance_of_the_exact_mixture_gives_the_reference(prior):
    """guided() on ExactLabelledMixture (the chapter's figure) is the exercise's guided score."""
    schedule = Schedule("linear")
    centres, tau = torch.tensor([[-1.0, 0.0], [1.0, 0.5]], dtype=torch.float64), 0.5
    p = torch.tensor([0.5, 0.5] if prior is None else prior, dtype=torch.float64)
    net = ExactLabelledMixture(centres, tau, schedule, None if prior is None else p)
    assert (net.dim, net.classes, net.null) == (2, 2, 2)
    g = torch.Generator().manual_seed(3)
    x, y = torch.randn(20, 2, generator=g, dtype=torch.float64), torch.randint(0, 2, (20,), generator=g)
    for t in (0.05, 0.35, 0.9):
        a, s = float(schedule.alpha(t)), float(schedule.sigma(t))
        for w in (0.0, 1.0, 3.0, 8.0):
            torch.testing.assert_close(guided(net, schedule, y, w).score(t, x),
                                       reference_guided_score(x, y, w, centres, tau, a, s, p))
    with pytest.raises(ValueError, match=r"centres must have shape \(classes, d\); got \(2,\)"):
        ExactLabelledMixture(torch.zeros(2), tau, schedule)
    with pytest.raises(ValueError, match="prior must be 2 positive numbers summing to 1"):
        ExactLabelledMixture(centres, tau, schedule, torch.tensor([0.5, 0.6]))
    with pytest.raises(ValueError, match="tau must be positive"):
        ExactLabelledMixture(centres, 0.0, schedule)


def test_unguided_ddim_on_the_exact_mixture_draws_each_class():
    """At w = 0 the sampler follows the exact conditional score: each class's samples have its mean and spread."""
    schedule = Schedule("linear")
    centres, tau = torch.tensor([[-1.0, 0.0], [1.0, 0.0]]), 0.6
    labels = torch.arange(2).repeat_interleave(2000)
    x = ddim(guided(ExactLabelledMixture(centres, tau, schedule), schedule, labels, 0.0), len(labels), 100,
             generator=torch.Generator().manual_seed(0))
    for k in (0, 1):
        xk = x[labels == k]
        assert (xk.mean(0) - centres[k]).abs().max() < 4 * tau / 2000**0.5
        assert (xk.std(0) - tau).abs().max() < 0.05


def test_a_correct_student_passes_and_the_checker_leaves_the_global_stream_alone():
    state = torch.get_rng_state()
    report = check_guided_score(closed_form)
    assert report and str(report) == "✅ guided_score: all 7 checks passed"
    assert torch.equal(torch.get_rng_state(), state)


def _with_w(sign):
    def student(x, y, w, *rest):
        return closed_form(x, y, sign * w, *rest)
    return student


def _unconditional_for_both(x, y, w, centres, tau, alpha_t, sigma_t, prior):
    v = alpha_t**2 * tau**2 + sigma_t**2
    diff = x[:, None, :] - alpha_t * centres[None]
    posterior = torch.softmax(prior.log() - (diff**2).sum(-1) / (2 * v), dim=1)
    unconditional = (posterior[..., None] * -diff / v).sum(1)
    return (1 + w) * unconditional - w * unconditional


@pytest.mark.parametrize("student, failed, says", [
    (_with_w(-1), 6, "the sign of w is flipped"),
    (_unconditional_for_both, 7, "the unconditional score s(x) alone: it was used in both terms"),
    (lambda x, y, w, c, tau, a, s, prior: closed_form(x, y, w, c, tau, a, s, torch.full_like(prior, 0.5)), 2,
     "with equal class weights"),
    (lambda x, y, w, c, tau, a, s, prior: closed_form(x, y, w, c, (tau**2 + s**2) ** 0.5, 1.0, 0.0, prior), 7,
     "not N(c_k, (tau^2 + sigma_t^2) I)"),
    (lambda x, y, w, *rest: closed_form(x, y, 0.0, *rest), 6, "the weight w was not applied"),
    (lambda *args: -closed_form(*args), 7, "a score points towards higher density"),
])
def test_a_wrong_student_fails_with_a_message_that_names_the_slip(student, failed, says):
    report = check_guided_score(student)
    text = str(report)
    assert not report and f"{failed} of 7 checks failed" in text, text
    assert says in text and "hint: class k of x_t is N(alpha_t c_k, v_t I)" in text, text


def test_errors_dtypes_and_non_functions_are_reported():
    assert "your function raised ZeroDivisionError" in str(check_guided_score(lambda *args: 1 / 0))
    assert "keep the input's dtype" in str(check_guided_score(lambda *args: closed_form(*args).float()))
    assert "expected a function, got int" in str(check_guided_score(3))
