"""The diffusion package against what must hold: schedules with their endpoints and derivatives, the forward
process and its posterior, the ELBO's weights, one model under four parameterisations, denoising score matching
minimised by the exact score, and every sampler reaching a known law from the exact score."""

import math

import pytest
import torch

from dgm_course.data import toy2d
from dgm_course.diffusion import (
    KINDS,
    Denoiser,
    ExactScore,
    Schedule,
    UNet,
    ancestral,
    annealed_langevin,
    ddim,
    ddim_step,
    denoising_loss,
    elbo_weight,
    euler_maruyama,
    exact,
    noisy,
    posterior,
    probability_flow,
)
from dgm_course.flows import TimeField
from dgm_course.langevin import langevin
from dgm_course.metrics import energy_test, mode_coverage
from dgm_course.training import fit

MEAN, STD = torch.tensor([0.7, -0.4], dtype=torch.float64), 0.5


def schedules():
    return [Schedule("linear"), Schedule("cosine"), Schedule("ve", sigma_max=20.0), Schedule("ot")]


def gaussian_model(schedule, mean=MEAN, parameterisation="score"):
    """The exact score of N(mean, STD^2 I), read as ``parameterisation`` (on the OT path, whose alpha reaches 0, the
    exact model is its clean-point prediction, by Gaussian conditioning)."""
    if schedule.kind == "ot":
        def x0(t, x):
            a, s2 = schedule.alpha(t)[:, None], schedule.sigma(t)[:, None] ** 2
            return mean + a * STD**2 / (a**2 * STD**2 + s2) * (x - a * mean)

        truth = Denoiser(x0, schedule, "x0").double()
    else:
        truth = Denoiser(ExactScore(exact.gaussian(mean, STD), schedule), schedule, "score").double()
    if parameterisation == truth.parameterisation:
        return truth
    readings = {"eps": truth.eps, "x0": truth.x0, "velocity": truth.velocity, "score": truth.score}
    return Denoiser(lambda t, x: readings[parameterisation](t, x), schedule, parameterisation).double()


@pytest.mark.parametrize("schedule", schedules(), ids=KINDS)
def test_schedules_are_monotone_with_their_endpoints_and_derivatives(schedule):
    t = torch.linspace(0, schedule.t_max, 201, dtype=torch.float64)
    a, s = schedule.alpha(t), schedule.sigma(t)
    assert (a[1:] <= a[:-1]).all() and (s[1:] >= s[:-1]).all() and (s[1:] > s[:-1]).any()
    assert float(a[0]) == pytest.approx(1.0)
    snr = schedule.snr(t[1:])
    assert (snr[1:] < snr[:-1]).all()
    if schedule.kind in ("linear", "cosine"):
        torch.testing.assert_close(a**2 + s**2, torch.ones_like(t))  # variance preserving
        assert float(s[0]) == 0.0
    if schedule.kind == "linear":
        assert float(a[-1]) == pytest.approx(math.exp(-0.5 * (0.1 + 0.5 * 19.9)))
    if schedule.kind == "ve":
        assert float(s[0]) == pytest.approx(0.01) and float(s[-1]) == pytest.approx(20.0)
    if schedule.kind == "ot":
        assert float(a[-1]) == 0.0 and float(s[-1]) == pytest.approx(1.0)
    inner = t[1:-1].clone().requires_grad_(True)  # derivatives against autograd, away from sigma_0 = 0
    da, ds = (torch.autograd.grad(v.sum(), inner)[0] if v.requires_grad else torch.zeros_like(inner)
              for v in (schedule.alpha(inner), schedule.sigma(inner)))
    torch.testing.assert_close(schedule.dalpha(inner.detach()), da, rtol=1e-6, atol=1e-9)
    torch.testing.assert_close(schedule.dsigma(inner.detach()), ds, rtol=1e-6, atol=1e-9)
    x = inner.detach()
    g2 = 2 * schedule.sigma(x) * ds - 2 * da / schedule.alpha(x) * schedule.sigma(x) ** 2
    torch.testing.assert_close(schedule.g2(x), g2, rtol=1e-6, atol=1e-9)


def test_bad_input_is_refused_naming_expected_and_received():
    with pytest.raises(ValueError, match="unknown schedule 'cosin'; choose one of: linear, cosine, ve, ot"):
        Schedule("cosin")
    with pytest.raises(ValueError, match=r"times must lie in \[0, 1.0\].*got 1.5"):
        Schedule("linear").alpha(torch.tensor([0.5, 1.5]))
    with pytest.raises(ValueError, match=r"times must lie in \[0, 0.999\]"):
        Schedule("cosine").sigma(1.0)
    model = gaussian_model(Schedule("linear"))
    with pytest.raises(ValueError, match=r"x must have shape \(batch, 2\); got \(4, 3\)"):
        model.eps(0.5, torch.zeros(4, 3, dtype=torch.float64))
    with pytest.raises(ValueError, match=r"t must be a number or one time per row, shape \(4,\); got \(3,\)"):
        model.eps(torch.full((3,), 0.5), torch.zeros(4, 2, dtype=torch.float64))
    with pytest.raises(ValueError, match="unknown parameterisation 'noise'"):
        Denoiser(TimeField(2), Schedule(), "noise")
    with pytest.raises(ValueError, match="reaches alpha = 0.*predict 'velocity' or 'x0'"):
        Denoiser(TimeField(2), Schedule("ot"), "eps")
    with pytest.raises(ValueError, match=r"eta must lie in \[0, 1\]"):
        ddim(model, 10, 5, eta=2.0)
    with pytest.raises(ValueError, match="steps must be a positive integer"):
        ddim(model, 10, 0)
    with pytest.raises(ValueError, match="checkerboard's noised density is not a Gaussian mixture"):
        toy2d.noised_log_density("checkerboard", torch.zeros(2, 2), 1.0, 0.5)
    with pytest.raises(ValueError, match="need 0 <= r < t"):
        posterior(Schedule(), torch.zeros(1, 2), torch.zeros(1, 2), 0.5, 0.4)
    with pytest.raises(ValueError, match="time_power must be a positive number"):
        denoising_loss(model, torch.zeros(4, 2, dtype=torch.float64), time_power=0)


@pytest.mark.parametrize("schedule", schedules(), ids=KINDS)
def test_the_forward_chain_has_the_closed_form_marginal(schedule):
    """x_t reached by 50 small Markov steps q(x_u | x_s) = N(alpha_{u|s} x_s, sigma_{u|s}^2) has the law of the
    one jump alpha_t x_0 + sigma_t eps (mean and variance within 5 standard errors)."""
    g = torch.Generator().manual_seed(0)
    n, t_end = 40_000, 0.8 * schedule.t_max
    x0 = torch.full((n, 1), 1.5, dtype=torch.float64)
    x, times = x0.clone(), torch.linspace(0, t_end, 51, dtype=torch.float64)
    for s, u in zip(times[:-1], times[1:]):
        a_us = schedule.alpha(u) / schedule.alpha(s)
        var_us = schedule.sigma(u) ** 2 - a_us**2 * schedule.sigma(s) ** 2
        x = a_us * x + var_us.sqrt() * torch.randn(n, 1, generator=g, dtype=torch.float64)
    mean, sd = float(schedule.alpha(t_end)) * 1.5, float(schedule.sigma(t_end))
    assert abs(float(x.mean()) - mean) < 5 * sd / math.sqrt(n)
    assert abs(float(x.var()) - sd**2) < 5 * sd**2 * math.sqrt(2 / n)


@pytest.mark.parametrize("schedule", schedules(), ids=KINDS)
def test_posterior_is_gaussian_conditioning_and_the_elbo_weight_is_the_kl(schedule):
    g = torch.Generator().manual_seed(1)
    s, t = 0.3 * schedule.t_max, 0.6 * schedule.t_max
    x0, xt = torch.randn(5, 2, generator=g, dtype=torch.float64), torch.randn(5, 2, generator=g, dtype=torch.float64)
    a_s, a_t = float(schedule.alpha(s)), float(schedule.alpha(t))
    v_s, v_t = float(schedule.sigma(s)) ** 2, float(schedule.sigma(t)) ** 2
    cov = a_t / a_s * v_s  # Cov(x_s, x_t | x_0)
    mean, std = posterior(schedule, x0, xt, s, t)
    torch.testing.assert_close(mean, a_s * x0 + cov / v_t * (xt - a_t * x0))
    assert std**2 == pytest.approx(v_s - cov**2 / v_t)
    # KL(q(x_s | x_t, x_0) || q(x_s | x_t, x0_hat)) = weight * |eps - eps_hat|^2
    eps, eps_hat = (xt - a_t * x0) / math.sqrt(v_t), torch.randn(5, 2, generator=g, dtype=torch.float64)
    x0_hat = (xt - math.sqrt(v_t) * eps_hat) / a_t
    mean_hat, _ = posterior(schedule, x0_hat, xt, s, t)
    kl = torch.distributions.kl_divergence(torch.distributions.Normal(mean, std),
                                           torch.distributions.Normal(mean_hat, std)).sum(1)
    torch.testing.assert_close(kl, elbo_weight(schedule, s, t) * ((eps - eps_hat) ** 2).sum(1))


@pytest.mark.parametrize("kind", ["linear", "ve", "ot"])
def test_one_model_four_parameterisations(kind):
    """The exact model read as noise, clean point, score or velocity gives the same four readings, and the velocity
    is the probability-flow drift f x - g^2 s / 2."""
    schedule = Schedule(kind, sigma_max=20.0) if kind == "ve" else Schedule(kind)
    g = torch.Generator().manual_seed(2)
    x = 2 * torch.randn(64, 2, generator=g, dtype=torch.float64)
    t = torch.rand(64, generator=g, dtype=torch.float64) * 0.9 + 0.05
    names = ["score", "eps", "x0", "velocity"] if kind != "ot" else ["x0", "velocity"]
    models = {p: gaussian_model(schedule, parameterisation=p) for p in names}
    reference = models[names[0]]
    for model in models.values():
        for reading in ("eps", "x0", "score", "velocity"):
            torch.testing.assert_close(getattr(model, reading)(t, x), getattr(reference, reading)(t, x))
    drift = schedule.drift(t)[:, None] * x - 0.5 * schedule.g2(t)[:, None] * reference.score(t, x)
    torch.testing.assert_close(reference.velocity(t, x), drift)


def test_tweedie_x0_is_the_posterior_mean_on_gaussian_data():
    schedule = Schedule("linear")
    model = gaussian_model(schedule)
    x, t = torch.randn(10, 2, dtype=torch.float64), 0.4
    a, s2 = float(schedule.alpha(t)), float(schedule.sigma(t)) ** 2
    expected = MEAN + a * STD**2 / (a**2 * STD**2 + s2) * (x - a * MEAN)  # Gaussian conditioning
    torch.testing.assert_close(model.x0(t, x), expected)


@pytest.mark.parametrize("data", ["gaussian", "8gaussians"])
def test_denoising_score_matching_is_minimised_by_the_exact_score(data):
    """With the same noise (common random numbers), the exact score's denoising loss is below that of scaled or
    shifted scores; and DSM minus explicit score matching is the same constant for every model (Vincent 2011)."""
    schedule = Schedule("linear")
    g = torch.Generator().manual_seed(3)
    if data == "gaussian":
        density, x0 = exact.gaussian(MEAN, STD), MEAN + STD * torch.randn(50_000, 2, generator=g, dtype=torch.float64)
    else:
        density, x0 = exact.toy(data), toy2d.sample(data, 50_000, g).double()
    truth = ExactScore(density, schedule)
    candidates = {"exact": truth, "x1.2": lambda t, x: 1.2 * truth(t, x), "x0.8": lambda t, x: 0.8 * truth(t, x),
                  "shift": lambda t, x: truth(t, x) + 0.3}
    dsm, esm = {}, {}
    for name, net in candidates.items():
        model = Denoiser(net, schedule, "score").double()
        dsm[name] = float(denoising_loss(model, x0, torch.Generator().manual_seed(4), t_min=0.05))
        gen = torch.Generator().manual_seed(4)  # the same t and eps: the explicit loss at the same x_t
        t = 0.05 + (1 - 0.05) * torch.rand(len(x0), generator=gen, dtype=torch.float64)
        xt = noisy(schedule, x0, t, torch.randn(x0.shape, generator=gen, dtype=torch.float64))
        sig = schedule.sigma(t)[:, None]
        esm[name] = float((sig**2 * (net(t, xt) - truth(t, xt)) ** 2).sum(1).mean())
    assert min(dsm, key=dsm.get) == "exact"
    gaps = [dsm[k] - esm[k] for k in dsm]
    assert max(gaps) - min(gaps) < 0.02 * abs(gaps[0])


def _law_ok(x, mean, std):
    n = len(x)
    assert (x.mean(0) - mean).abs().max() < 4.5 * std / math.sqrt(n)
    assert (x.std(0) - std).abs().max() < 4.5 * std / math.sqrt(2 * n)


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["linear", "cosine", "ve"])
def test_samplers_reach_the_data_law_from_the_exact_score(kind):
    schedule = Schedule(kind, sigma_max=40.0) if kind == "ve" else Schedule(kind)
    mean = MEAN if kind != "ve" else torch.zeros(2, dtype=torch.float64)  # VE starts from N(0, sigma_max^2)
    model = gaussian_model(schedule, mean)
    g, n = torch.Generator().manual_seed(5), 20_000
    reference = (mean + STD * torch.randn(2000, 2, generator=g, dtype=torch.float64))
    runs = {"ddim": ddim(model, n, 400, generator=g), "ancestral": ancestral(model, n, 1000, generator=g),
            "euler-maruyama": euler_maruyama(model, n, 1000, generator=g)}
    for name, x in runs.items():
        _law_ok(x, mean, STD)
        assert energy_test(x[:2000], reference, 99, g)[1] > 0.01, name


def test_ddim_is_euler_on_the_rescaled_probability_flow_and_converges_to_it():
    schedule = Schedule("linear")
    model = gaussian_model(schedule)
    x = torch.randn(200, 2, generator=torch.Generator().manual_seed(6), dtype=torch.float64)
    t, s = 0.7, 0.6
    a_t, a_s, sig_t, sig_s = (float(schedule.alpha(t)), float(schedule.alpha(s)), float(schedule.sigma(t)),
                              float(schedule.sigma(s)))
    euler = a_s * (x / a_t + (sig_s / a_s - sig_t / a_t) * model.eps(t, x))  # d xbar / d sigmabar = eps
    torch.testing.assert_close(ddim_step(model, x, t, s), euler)
    # with more and more steps, DDIM tends to the probability-flow ODE's solution (dopri5), its error halving
    # with each doubling
    flow = probability_flow(model, t_min=1e-3)
    z = torch.randn(200, 2, generator=torch.Generator().manual_seed(7), dtype=torch.float64)
    with torch.no_grad():
        exact_end, _ = flow.bijection.inverse(z)
    errors = []
    for steps in (25, 50, 100, 200):
        x = z.clone()
        grid = torch.linspace(1.0, 1e-3, steps + 1, dtype=torch.float64).tolist()
        for a, b in zip(grid[:-1], grid[1:]):
            x = ddim_step(model, x, a, b)
        errors.append(float((x - exact_end).abs().max()))
    orders = [math.log2(e1 / e2) for e1, e2 in zip(errors, errors[1:])]
    assert all(abs(p - 1) < 0.15 for p in orders), orders  # a first-order method, as Euler's is
    assert errors[-1] < 0.03


def test_ancestral_step_draws_from_the_posterior_with_x0_hat():
    schedule = Schedule("cosine")
    model = gaussian_model(schedule)
    x = torch.randn(100, 2, generator=torch.Generator().manual_seed(8), dtype=torch.float64)
    t, s = 0.5, 0.45
    noise = torch.randn(x.shape, generator=torch.Generator().manual_seed(9), dtype=torch.float64)
    stepped = ddim_step(model, x, t, s, eta=1.0, generator=torch.Generator().manual_seed(9))
    mean, std = posterior(schedule, model.x0(t, x), x, s, t)
    torch.testing.assert_close(stepped, mean + std * noise)


@pytest.mark.parametrize("kind", ["linear", "ve"])
def test_probability_flow_log_density_is_exact_on_gaussian_data(kind):
    schedule = Schedule(kind, sigma_max=50.0) if kind == "ve" else Schedule(kind)
    zero = torch.zeros(2, dtype=torch.float64)
    flow = probability_flow(gaussian_model(schedule, zero)).double()
    x = STD * torch.randn(20, 2, generator=torch.Generator().manual_seed(10), dtype=torch.float64)
    with torch.no_grad():
        got = flow.log_prob(x)
    truth = torch.distributions.Normal(zero, STD).log_prob(x).sum(1)
    torch.testing.assert_close(got, truth, atol=2e-3, rtol=0)


def test_langevin_and_annealed_langevin_reach_known_laws():
    g = torch.Generator().manual_seed(11)
    start = 3 * torch.randn(5000, 2, generator=g, dtype=torch.float64)
    x = langevin(lambda y: -(y - MEAN) / STD**2, start, 0.005, 2000, g)
    _law_ok(x, MEAN, STD)
    with pytest.raises(FloatingPointError, match="take a smaller step"):
        langevin(lambda y: -(y - MEAN) / STD**2, start, 10.0, 400, g)
    schedule = Schedule("ve", sigma_max=6.0)  # Song & Ermon's recipe on the 8 Gaussians: every mode reached
    model = Denoiser(ExactScore(exact.toy("8gaussians"), schedule), schedule, "score").double()
    samples = annealed_langevin(model, 4000, levels=10, steps_each=100, step=2e-4, generator=g)
    means, std = toy2d.modes("8gaussians")
    modes, high_quality = mode_coverage(samples.float(), means, std)
    assert modes == 8 and high_quality > 0.9
    reference = toy2d.sample("8gaussians", 2000, g).double()
    assert energy_test(samples[:2000], reference, 99, g)[1] > 0.01


def test_noised_toy_densities_integrate_to_one_and_reduce_to_the_data():
    x = toy2d.sample("moons", 100, torch.Generator().manual_seed(12)).double()
    torch.testing.assert_close(toy2d.noised_log_density("moons", x, 1.0, 0.0), toy2d.log_density("moons", x))
    h = 0.05
    axis = torch.arange(-8, 8, h, dtype=torch.float64)
    grid = torch.cartesian_prod(axis, axis)
    mass = float(toy2d.noised_log_density("25gaussians", grid, 0.6, 0.7).exp().sum() * h * h)
    assert mass == pytest.approx(1.0, abs=1e-6)


def test_a_small_model_learns_the_eight_gaussians():
    torch.manual_seed(0)
    schedule = Schedule("linear")
    model = Denoiser(TimeField(2, 64, 3), schedule, "eps")
    history = fit(model, lambda x: denoising_loss(model, x), lambda n, g: toy2d.sample("8gaussians", n, g),
                  steps=600, batch_size=256, lr=3e-3, cosine=True, progress=False)
    assert sum(history.loss[-50:]) / 50 < 0.7 * sum(history.loss[:50]) / 50
    samples = ddim(model, 2000, 50, generator=torch.Generator().manual_seed(0))
    means, std = toy2d.modes("8gaussians")
    modes, _ = mode_coverage(samples, means, std)
    assert modes == 8


def test_the_ddim_exercise_checker_accepts_the_step_and_explains_a_wrong_one():
    from dgm_course.exercises.diffusion import check_ddim_step

    def right(x_t, eps_hat, alpha_t, sigma_t, alpha_r, sigma_r):
        return alpha_r * (x_t - sigma_t * eps_hat) / alpha_t + sigma_r * eps_hat

    def wrong(x_t, eps_hat, alpha_t, sigma_t, alpha_r, sigma_r):  # forgets to rescale x0_hat
        return alpha_r * (x_t - sigma_t * eps_hat) + sigma_r * eps_hat

    assert check_ddim_step(right)
    report = check_ddim_step(wrong)
    assert not report and "the linear schedule from t = 0.6 to r = 0.5" in str(report) and "hint" in str(report)


def test_euler_maruyama_refuses_a_schedule_whose_alpha_reaches_zero():
    schedule = Schedule("ot")
    model = Denoiser(lambda t, x: torch.zeros_like(x), schedule, "velocity")
    with pytest.raises(ValueError, match="reaches alpha = 0 .* sample it with ddim"):
        euler_maruyama(model, 10, 5)


class _TwoClassExact(torch.nn.Module):
    """The exact noise of a two-class law, class k ~ N(c_k, STD^2 I) with prior 1/2 each: net(t, x, y) with y = 2
    (the null label) for the mixture."""

    dim, null = 2, 2
    centres = torch.tensor([[-2.0, 0.0], [2.0, 1.0]], dtype=torch.float64)

    def __init__(self, schedule):
        super().__init__()
        self.schedule = schedule
        self.scores = [ExactScore(exact.gaussian(c, STD), schedule) for c in self.centres]
        self.scores.append(ExactScore(exact.mixture(self.centres, STD), schedule))

    def forward(self, t, x, y):
        sigma = self.schedule.sigma(t)[:, None]
        out = torch.stack([s(t, x) for s in self.scores])  # (3, batch, 2)
        return -sigma * out[y, torch.arange(len(x))]


def test_guidance_adds_the_implicit_classifiers_gradient():
    """With exact scores, the guided score is grad log p_t(x | y) + w grad log p_t(y | x) (Bayes), with p_t(y | x)
    the exact posterior of the class given the noisy point."""
    from dgm_course.diffusion import guided

    schedule = Schedule("linear")
    net = _TwoClassExact(schedule)
    g = torch.Generator().manual_seed(13)
    x, t = 2 * torch.randn(50, 2, generator=g, dtype=torch.float64), torch.full((50,), 0.3, dtype=torch.float64)
    y = torch.randint(0, 2, (50,), generator=g)
    conditional = net.scores[0](t, x) * (y == 0)[:, None] + net.scores[1](t, x) * (y == 1)[:, None]
    log_joint = torch.stack([exact.gaussian(c, STD)(x.requires_grad_(True), schedule.alpha(t)[:, None],
                                                    schedule.sigma(t)[:, None]) for c in net.centres], dim=1)
    log_posterior = (log_joint - torch.logsumexp(log_joint, dim=1, keepdim=True))[torch.arange(50), y]
    (classifier,) = torch.autograd.grad(log_posterior.sum(), x)
    x = x.detach()
    for w in (0.0, 1.5):
        torch.testing.assert_close(guided(net, schedule, y, w).score(t, x), conditional + w * classifier)
    with pytest.raises(ValueError, match="weight must be >= 0"):
        guided(net, schedule, y, -0.5)


def test_label_dropout_hides_the_label_at_the_asked_rate_and_labels_are_checked():
    from dgm_course.diffusion import LabelledField, label_dropout_loss

    net = LabelledField(4, classes=3, hidden=8, depth=1, embed=4, freqs=2)
    seen = []
    net.label.register_forward_hook(lambda module, inputs, output: seen.append(inputs[0].clone()))
    torch.manual_seed(0)
    label_dropout_loss(net, Schedule(), torch.randn(20_000, 4), torch.randint(0, 3, (20_000,)), p_uncond=0.2)
    share = float((seen[0] == net.null).float().mean())
    assert abs(share - 0.2) < 4 * math.sqrt(0.2 * 0.8 / 20_000)
    with pytest.raises(ValueError, match=r"labels must lie in 0..2, or 3 for no label"):
        net(torch.zeros(2), torch.zeros(2, 4), torch.tensor([0, 7]))
    with pytest.raises(ValueError, match=r"one integer label per row, shape \(2,\)"):
        net(torch.zeros(2), torch.zeros(2, 4), torch.tensor([0.0, 1.0]))
    with pytest.raises(ValueError, match=r"p_uncond must lie in \[0, 1\)"):
        label_dropout_loss(net, Schedule(), torch.randn(8, 4), torch.zeros(8, dtype=torch.long), p_uncond=1.0)


def test_a_small_conditional_model_puts_each_class_where_it_belongs():
    from dgm_course.diffusion import LabelledField, guided, label_dropout_loss

    centres = _TwoClassExact.centres.float()
    g = torch.Generator().manual_seed(14)
    y = torch.randint(0, 2, (4000,), generator=g)
    x = centres[y] + STD * torch.randn(4000, 2, generator=g)
    torch.manual_seed(0)
    net = LabelledField(2, classes=2, hidden=64, depth=2, embed=8, freqs=4)
    schedule = Schedule("linear")
    fit(net, lambda b: label_dropout_loss(net, schedule, b[:, :2], b[:, 2].long()), torch.cat([x, y[:, None]], 1),
        steps=800, batch_size=256, lr=3e-3, cosine=True, progress=False)
    for k in (0, 1):
        samples = ddim(guided(net, schedule, k, 1.0), 500, 30, generator=torch.Generator().manual_seed(k))
        nearest = ((samples[:, None] - centres[None]) ** 2).sum(-1).argmin(1)
        assert float((nearest == k).float().mean()) > 0.97


def test_the_ot_schedule_with_a_velocity_is_chapter_3s_flow_matching():
    """At the same draws, the OT schedule's noisy point and velocity target are chapter 3's conditional OT path read
    in reversed time (s = 1 - t), with the velocity's sign flipped."""
    from dgm_course.flows.matching import conditional_ot_path

    schedule = Schedule("ot")
    g = torch.Generator().manual_seed(15)
    x1, noise = (torch.randn(100, 2, generator=g, dtype=torch.float64),
                 torch.randn(100, 2, generator=g, dtype=torch.float64))
    t = torch.rand(100, generator=g, dtype=torch.float64)
    point, target = conditional_ot_path(noise, x1, 1 - t, schedule.sigma_min)
    torch.testing.assert_close(noisy(schedule, x1, t, noise), point)
    torch.testing.assert_close(schedule.dalpha(t)[:, None] * x1 + schedule.dsigma(t)[:, None] * noise, -target)


def test_models_sample_and_score_in_their_networks_dtype():
    schedule = Schedule("ve", sigma_max=5.0)
    model = Denoiser(TimeField(2, 16, 2).double(), schedule, "eps")
    samples = ddim(model, 8, 4)
    assert samples.dtype == torch.float64
    flow = probability_flow(model)
    with torch.no_grad():
        assert flow.log_prob(samples).dtype == torch.float64
    with pytest.raises(ValueError, match="eta must lie in"):
        ddim_step(model, samples, 0.5, 0.4, eta=1.5)
    with pytest.raises(ValueError, match="carries its own schedule"):
        Denoiser(ExactScore(exact.gaussian(MEAN, STD), Schedule("linear")), Schedule("cosine"), "score")


def _unet_with_random_output() -> UNet:
    """A U-Net whose last convolution (started at zero) is given random weights, so that its output is not 0."""
    torch.manual_seed(0)
    net = UNet((1, 8, 8), channels=8, levels=1)
    torch.nn.init.normal_(net.out[-1].weight, std=0.1)
    return net


def test_the_unet_starts_at_zero_and_reads_its_rows_as_images_one_at_a_time():
    torch.manual_seed(0)
    x = torch.randn(4, 64)
    assert torch.equal(UNet((1, 8, 8), channels=8)(0.5, x), torch.zeros(4, 64))  # the last convolution starts at 0
    net = _unet_with_random_output()
    x.requires_grad_(True)
    out = net(torch.tensor([0.1, 0.4, 0.7, 0.9]), x)
    assert out.shape == (4, 64) and out.abs().min() > 0
    (grad,) = torch.autograd.grad(out[1].sum(), x)
    assert grad[1].abs().sum() > 0 and torch.equal(grad[[0, 2, 3]], torch.zeros(3, 64))  # no row sees another
    assert not torch.allclose(net(0.2, x), net(0.8, x))  # the time matters


@pytest.mark.parametrize(("shape", "levels"), [((1, 8, 8), 1), ((1, 28, 28), 2), ((3, 8, 16), 3)])
def test_the_unet_takes_images_of_any_channels_size_and_depth_one_row_at_a_time(shape, levels):
    """Several halvings join skips of different widths (a skip of the wrong resolution could not be concatenated),
    several channels and non-square images; and no row's output depends on another row (GroupNorm normalises each
    image on its own; a batch normalisation would fail this)."""
    torch.manual_seed(0)
    net = UNet(shape, channels=8, levels=levels)
    torch.nn.init.normal_(net.out[-1].weight, std=0.1)
    d = math.prod(shape)
    x = torch.randn(3, d, requires_grad=True)
    out = net(torch.tensor([0.2, 0.5, 0.8]), x)
    assert out.shape == (3, d) and torch.isfinite(out).all()
    (grad,) = torch.autograd.grad(out[0].sum(), x)
    assert grad[0].abs().sum() > 0 and torch.equal(grad[1:], torch.zeros(2, d))


def test_a_unet_denoiser_learns_and_bad_shapes_are_refused():
    """Images c * pattern (c ~ N(0, 1)) lie on a line of R^64: a zero network has the noise loss E|eps|^2 = 64, and
    a denoiser that learns where the data lie removes most of it."""
    pattern = torch.linspace(-1, 1, 8).outer(torch.linspace(-1, 1, 8)).flatten()

    def data(n: int, generator: torch.Generator) -> torch.Tensor:
        return torch.randn(n, 1, generator=generator) * pattern

    torch.manual_seed(0)
    model = Denoiser(UNet((1, 8, 8), channels=8), Schedule("linear"), "eps", shape=(64,))
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        before = float(denoising_loss(model, data(2000, gen), generator=gen))
    fit(model, lambda x: denoising_loss(model, x), data, steps=200, batch_size=128, lr=3e-3, seed=0, progress=False)
    with torch.no_grad():
        after = float(denoising_loss(model, data(2000, gen), generator=gen))
    assert before == pytest.approx(64, rel=0.05) and after < before / 2, (before, after)
    with pytest.raises(ValueError,
                       match=r"x must have shape \(batch, 64\): images \(1, 8, 8\) flattened; got \(2, 63\)"):
        UNet((1, 8, 8))(0.5, torch.zeros(2, 63))
    with pytest.raises(ValueError, match="3 halvings need height and width divisible by 8; got 8 x 12"):
        UNet((1, 8, 12), levels=3)
    with pytest.raises(ValueError, match=r"shape must be \(channels, height, width\)"):
        UNet((8, 8))
