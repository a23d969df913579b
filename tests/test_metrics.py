import math

import dcor
import numpy as np
import pytest
import scipy.stats
import torch

from dgm_course.metrics import bits_per_dim, energy_distance, energy_test, integrate_2d


def _pair(gen, n=120, m=90, d=3, shift=0.5):
    x = torch.randn(n, d, generator=gen, dtype=torch.float64)
    y = torch.randn(m, d, generator=gen, dtype=torch.float64) * 1.3 + shift
    return x, y


@pytest.mark.parametrize("unbiased", [False, True])
@pytest.mark.parametrize("d", [1, 2, 7])
def test_energy_distance_matches_dcor(gen, unbiased, d):
    x, y = _pair(gen, d=d)
    ours = float(energy_distance(x, y, unbiased=unbiased))
    ref = dcor.energy_distance(x.numpy(), y.numpy(), estimation_stat="u_statistic" if unbiased else "v_statistic")
    assert ours == pytest.approx(float(ref), rel=0, abs=1e-10)


def test_energy_distance_in_1d_is_scipys_squared(gen):
    x, y = _pair(gen, d=1)
    # scipy's energy_distance is the square root of the V-statistic
    assert float(energy_distance(x, y)) == pytest.approx(scipy.stats.energy_distance(x[:, 0], y[:, 0]) ** 2, abs=1e-10)


def test_energy_distance_properties(gen):
    x, y = _pair(gen)
    assert float(energy_distance(x, x)) == pytest.approx(0.0, abs=1e-12)
    assert float(energy_distance(x, y)) == pytest.approx(float(energy_distance(y, x)), abs=1e-12)
    assert float(energy_distance(x, y)) > 0
    # the V-statistic is a squared distance between empirical laws: non-negative for any samples
    for _ in range(20):
        a, b = _pair(gen, n=5, m=7, shift=0.0)
        assert float(energy_distance(a, b)) >= -1e-12


@pytest.mark.parametrize("d", [3, 64])  # 64: distances from the Gram matrix
def test_energy_distance_blocks_agree_with_one_block(gen, monkeypatch, d):
    import dgm_course.metrics as metrics

    x, y = _pair(gen, n=300, m=200, d=d)
    whole = float(energy_distance(x, y))
    monkeypatch.setattr(metrics, "_BLOCK_ELEMENTS", 64)  # force many small row blocks
    assert float(energy_distance(x, y)) == pytest.approx(whole, rel=1e-13)


@pytest.mark.parametrize("d", [3, 64])
def test_energy_distance_is_differentiable_with_coincident_points(gen, d):
    x, y = _pair(gen, n=30, m=20, d=d)
    x = torch.cat([x, x[:3]]).requires_grad_(True)  # duplicated points: |x_i - x_j| = 0
    y = torch.cat([y, x[:2].detach()]).requires_grad_(True)
    value = energy_distance(x, y)
    value.backward()
    assert torch.isfinite(x.grad).all() and torch.isfinite(y.grad).all()
    # gradient agrees with finite differences at a generic point
    xd, yd = _pair(gen, n=6, m=5)
    assert torch.autograd.gradcheck(lambda a, b: energy_distance(a, b), (xd.requires_grad_(), yd.requires_grad_()))


@pytest.fixture
def gram_only(monkeypatch):
    """The Gram path with the difference kernel forbidden: a test using this fixture fails if it is taken."""
    import dgm_course.metrics as metrics

    def refuse(a, b):
        raise AssertionError("the difference kernel was used where the Gram path should have been")

    monkeypatch.setattr(metrics, "_exact_cdist", refuse)


def test_gram_distances_equal_the_differences_norms_near_and_far(gen, gram_only):
    """In float64 and many dimensions the distances come from the Gram matrix; against the differences' norms they
    agree to 1e-12 relative for far pairs, for duplicates (exactly 0), for near neighbours (1e-6 apart: their squares
    cancel, so the Gram form alone would be wrong in the 4th digit), for two clusters far from the origin (centring
    rounds them; the near pairs are recomputed from the original points) and at the smallest dimension, 16."""
    from dgm_course.metrics import _distances

    def exact(x, y):
        return torch.linalg.vector_norm(x[:, None, :] - y[None, :, :], dim=2)

    def noise(n, d, scale=1.0):
        return scale * torch.randn(n, d, generator=gen, dtype=torch.float64)

    for d in (16, 64):
        a = noise(200, d)
        b = torch.cat([noise(150, d), a[:5], a[5:10] + noise(5, d, 1e-6)])
        # three points near (1e6, ..., 1e6) in each sample, whose distances (about 11) are near pairs at this scale,
        # beside clouds at the origin and at -1e6: the centre, near the origin, is far from the near pairs
        far_x = torch.cat([noise(3, d) + 1e6, noise(97, d)])
        far_y = torch.cat([noise(3, d) + 1e6, noise(97, d) - 1e6])
        for x, y in [(a, b), (b, b), (far_x, far_y)]:
            assert ((_distances(x, y) - exact(x, y)).abs() <= 1e-12 * exact(x, y)).all()
        assert (_distances(a, b)[torch.arange(5), 150 + torch.arange(5)] == 0).all()


def test_a_collapsed_sample_takes_the_difference_kernel(gen, monkeypatch):
    """Ten points repeated ten times each (a generator collapsed onto a few outputs): a tenth of the pairs are
    duplicates, more than one in 16, so the block takes the difference kernel whole; a tight cloud of distinct
    points does not (after centring its distances are far from cancelling)."""
    import dgm_course.metrics as metrics

    calls = []
    exact_cdist = metrics._exact_cdist
    monkeypatch.setattr(metrics, "_exact_cdist", lambda a, b: calls.append(1) or exact_cdist(a, b))
    x = torch.randn(10, 64, generator=gen, dtype=torch.float64).repeat(10, 1)
    assert torch.equal(metrics._distances(x, x), exact_cdist(x, x)) and calls == [1]
    calls.clear()
    cloud = 1.0 + 1e-8 * torch.randn(100, 64, generator=gen, dtype=torch.float64)
    distances = metrics._distances(cloud, cloud)
    assert calls == [] and ((distances - exact_cdist(cloud, cloud)).abs() <= 1e-12 * distances).all()


@pytest.mark.slow
@pytest.mark.parametrize("d", [16, 64])
def test_energy_distance_matches_dcor_in_many_dimensions(gen, gram_only, d):
    """The Gram path (float64, d >= 16) against dcor: 1e-12 relative, with duplicated points in both samples."""
    x, y = _pair(gen, n=400, m=300, d=d, shift=0.05)
    x, y = torch.cat([x, x[:7], y[:3]]), torch.cat([y, y[:4]])
    for unbiased in (False, True):
        ours = float(energy_distance(x, y, unbiased=unbiased))
        ref = float(dcor.energy_distance(x.numpy(), y.numpy(),
                                         estimation_stat="u_statistic" if unbiased else "v_statistic"))
        assert abs(ours - ref) <= 1e-12 * abs(ref)
    if d == 16:  # the Gram path's gradient against finite differences (blocks of more than 16 rows take it)
        xd, yd = _pair(gen, n=80, m=70, d=d)
        assert torch.autograd.gradcheck(lambda a, b: energy_distance(a, b), (xd.requires_grad_(), yd.requires_grad_()))


def test_energy_distance_rejects_bad_input():
    with pytest.raises(ValueError, match=r"y must have shape \(batch, 2\); got shape \(4, 3\)"):
        energy_distance(torch.zeros(4, 2), torch.zeros(4, 3))
    with pytest.raises(ValueError, match="NaN"):
        energy_distance(torch.tensor([[float("nan"), 0.0]]), torch.zeros(2, 2))
    with pytest.raises(ValueError, match="at least 2 points"):
        energy_distance(torch.zeros(1, 2), torch.zeros(3, 2), unbiased=True)


def test_energy_test_statistic_matches_dcor(gen):
    x, y = _pair(gen)
    stat, p = energy_test(x, y, 199, gen)
    ref = dcor.homogeneity.energy_test(x.numpy(), y.numpy(), num_resamples=0)
    assert stat == pytest.approx(float(ref.statistic), rel=1e-12)
    assert stat == pytest.approx(len(x) * len(y) / (len(x) + len(y)) * float(energy_distance(x, y)), rel=1e-12)
    assert p == pytest.approx(1 / 200)  # a shift of 0.5 and scale 1.3 with 200 points: never exceeded


def test_energy_test_p_value_is_reproducible_and_on_the_lattice(gen):
    x, y = _pair(gen, shift=0.0)
    a = energy_test(x, y, 99, torch.Generator().manual_seed(5))
    b = energy_test(x, y, 99, torch.Generator().manual_seed(5))
    assert a == b
    assert (a[1] * 100) == pytest.approx(round(a[1] * 100))


def test_energy_test_p_values_are_uniform_under_the_null():
    """Under H0 the permutation p-value is (discrete) uniform: P(p <= alpha) <= alpha, and the p-values of
    300 independent null experiments pass a Kolmogorov-Smirnov test of uniformity (at level 0.001)."""
    gen = torch.Generator().manual_seed(7)
    p_values = []
    for _ in range(300):
        z = torch.randn(40, 2, generator=gen, dtype=torch.float64)
        p_values.append(energy_test(z[:20], z[20:], 99, gen)[1])
    p_values = np.array(p_values)
    assert scipy.stats.kstest(p_values, "uniform").pvalue > 1e-3
    rejections = (p_values <= 0.05).sum()
    assert rejections <= scipy.stats.binom.ppf(0.999, 300, 0.05)


def test_integrate_2d_and_bits_per_dim():
    def std_normal(x):
        return -0.5 * x.pow(2).sum(1) - math.log(2 * math.pi)

    assert integrate_2d(std_normal, 6.0, 300) == pytest.approx(1.0, abs=1e-6)
    assert integrate_2d(std_normal, 1.0, 300) < 0.5
    assert bits_per_dim(784 * math.log(2), 784) == pytest.approx(1.0)


def test_held_out_nll_is_the_mean_and_standard_error_of_minus_log_p() -> None:
    from dgm_course.metrics import held_out_nll

    x = torch.randn(30_000, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    normal = torch.distributions.Normal(0.0, 1.0)
    nll, se = held_out_nll(lambda v: normal.log_prob(v).sum(dim=1), x, chunk=7000)
    log_p = normal.log_prob(x).sum(dim=1)
    assert nll == pytest.approx(float(-log_p.mean()), abs=1e-12)
    assert se == pytest.approx(float(log_p.std()) / 30_000**0.5, abs=1e-12)
    assert abs(nll - math.log(2 * math.pi * math.e)) < 4 * se  # the entropy of N(0, I_2)
    with pytest.raises(ValueError, match="NaN"):
        held_out_nll(lambda v: v[:, 0], torch.tensor([[float("nan"), 0.0]]))


def test_the_energy_distance_checker_accepts_the_solution_and_rejects_mistakes():
    from dgm_course.exercises.metrics import check_energy_distance

    def mean_distance(a, b):
        return (a[:, None, :] - b[None, :, :]).norm(dim=-1).mean()

    def solution(x, y):
        return 2 * mean_distance(x, y) - mean_distance(x, x) - mean_distance(y, y)

    def u_statistic(x, y):  # the unbiased variant is not what is asked
        n, m = len(x), len(y)
        within = (x[:, None] - x[None]).norm(dim=-1).sum() / (n * (n - 1))
        return 2 * mean_distance(x, y) - within - (y[:, None] - y[None]).norm(dim=-1).sum() / (m * (m - 1))

    assert check_energy_distance(solution)
    assert check_energy_distance(lambda x, y: energy_distance(x, y))
    report = check_energy_distance(u_statistic)
    assert not report and "x = {(0, 0)}, y = {(3, 4)}" in str(report)  # 0/0 with single points
    no_two = check_energy_distance(lambda x, y: mean_distance(x, y) - mean_distance(x, x) - mean_distance(y, y))
    assert not no_two and "5 instead of 10" in str(no_two)


def test_radial_power_obeys_parseval_and_sees_white_noise_as_flat():
    from dgm_course.metrics import radial_power

    s = 32
    gen = torch.Generator().manual_seed(0)
    noise = 0.5 * torch.randn(400, 1, s, s, generator=gen, dtype=torch.float64)
    ring = radial_power(noise)
    assert ring.shape == (s // 2 + 1,)
    assert torch.allclose(ring[1:], torch.full_like(ring[1:], 0.25 * s * s), rtol=0.1)  # sigma^2 s^2 everywhere
    # a single cosine of 5 cycles along the rows puts all its power at ring 5 (and the mean at ring 0)
    i = torch.arange(s, dtype=torch.float64)
    wave = (1 + torch.cos(2 * math.pi * 5 * i / s))[:, None].expand(s, s)[None]
    ring = radial_power(wave)
    assert torch.nonzero(ring > 1e-9).flatten().tolist() == [0, 5]
    # Parseval: the power of every frequency, each ring counted as many times as it has frequencies
    x = torch.rand(1, s, s, generator=gen, dtype=torch.float64)
    f = torch.fft.fftfreq(s, d=1 / s, dtype=torch.float64)
    counts = torch.bincount(torch.hypot(f[:, None], f[None, :]).round().long().flatten())
    inside = counts[: s // 2 + 1]  # the corners, beyond s/2, are left out of the rings returned
    total = torch.fft.fft2(x[0]).abs().pow(2)
    kept = total[torch.hypot(f[:, None], f[None, :]).round() <= s // 2].sum()
    assert float((radial_power(x) * inside).sum()) == pytest.approx(float(kept), rel=1e-12)
    assert float(total.sum()) == pytest.approx(s * s * float(x.pow(2).sum()), rel=1e-12)
    with pytest.raises(ValueError, match="square"):
        radial_power(torch.zeros(1, 1, 8, 6))
    with pytest.raises(ValueError, match="grey images"):
        radial_power(torch.zeros(1, 3, 8, 8))


def test_the_bootstrap_interval_covers_at_its_level():
    """The 95 % percentile interval of a sample mean (n = 100, normal data) covers the true mean in a share of 200
    trials within the 99.9 % binomial bound below 0.95 (the percentile bootstrap under-covers slightly at this n), and
    a two-sample statistic resamples each sample on its own."""
    from dgm_course.metrics import bootstrap_interval

    g = torch.Generator().manual_seed(0)
    covered = 0
    for _ in range(200):
        x = torch.randn(100, 1, generator=g, dtype=torch.float64)
        low, high = bootstrap_interval(lambda s: s.mean(), x, resamples=200, generator=g)
        covered += low <= 0.0 <= high
    assert covered / 200 >= 0.95 - 3.1 * (0.95 * 0.05 / 200) ** 0.5
    x, y = torch.zeros(50, 1, dtype=torch.float64), torch.ones(30, 1, dtype=torch.float64)
    assert bootstrap_interval(lambda a, b: b.mean() - a.mean(), x, y, resamples=20, generator=g) == (1.0, 1.0)
    with pytest.raises(ValueError, match=r"level must lie in \(0, 1\)"):
        bootstrap_interval(lambda s: s.mean(), x, level=95)
    with pytest.raises(ValueError, match="give the samples"):
        bootstrap_interval(lambda: 0.0)
