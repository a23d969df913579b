r"""Metrics that judge a generative model by its samples or its density.

The energy distance of Székely and Rizzo (2004) between the laws of :math:`X` and :math:`Y`,

.. math::
    \mathcal E(X, Y) = 2\,\mathbb E|X - Y| - \mathbb E|X - X'| - \mathbb E|Y - Y'| \;\ge 0,
    :label: energy-distance

is zero exactly when the laws agree. From samples :math:`x_1..x_n`, :math:`y_1..y_m` the V-statistic
replaces every expectation by the mean over all pairs (self-pairs included); the U-statistic excludes
the self-pairs :math:`i = j` from the within-sample means, which makes it unbiased.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor

from ._checks import as_points, positive_int
from .data import toy2d

# A block of pairwise distances holds at most this many entries: memory stays bounded (8 MiB in float64).
_BLOCK_ELEMENTS = 1 << 20
# In float64 and at least this many dimensions, distances come from the Gram matrix (``_distances``).
_GRAM_MIN_DIM = 16


def _exact_cdist(a: Tensor, b: Tensor) -> Tensor:
    """|a_i - b_j| from the differences themselves (torch's exact kernel, not its plain Gram-matrix shortcut
    |a|^2 + |b|^2 - 2 a.b, whose cancellation costs about 1e-10 relative where points are close; ``_distances``
    uses the Gram matrix only where it cannot cancel); gradient 0 where points coincide."""
    return torch.cdist(a, b, compute_mode="donot_use_mm_for_euclid_dist")


def _distances(a: Tensor, b: Tensor) -> Tensor:
    r"""The matrix :math:`|a_i - b_j|`, exact to rounding and differentiable (gradient 0 where points coincide).

    In float64 with :math:`d \ge` ``_GRAM_MIN_DIM``, from the Gram matrix: on the samples centred on the mean of
    ``a``, :math:`s_{ij} = |a_i|^2 + |b_j|^2 - 2\,a_i \cdot b_j`, one matrix product. Its rounding error is at most
    about :math:`(2d + 3)\,u\,(|a_i|^2 + |b_j|^2)` (:math:`u = 2^{-53}`; the two squared norms and the inner
    product, each within :math:`d\,u` of its terms' sum, and the additions), so where :math:`s_{ij} > \tau\,(|a_i|^2
    + |b_j|^2)` with :math:`\tau = \max(10^{-2}, 10^{-4} d)` the distance's relative error is below
    :math:`(2d + 3)\,u / (2\tau) < 1.2 \cdot 10^{-12}` in the worst case (rounding errors that do not all align
    give far less). The pairs below that (duplicates, near neighbours) are
    recomputed from the differences of the original points, and a block where they are more than one in 16 (a
    collapsed sample) takes the difference kernel whole. In float32 (:math:`u = 2^{-24}`) or in few dimensions,
    where the product gains little, the difference kernel throughout."""
    d = a.shape[1]
    if a.dtype != torch.float64 or d < _GRAM_MIN_DIM:
        return _exact_cdist(a, b)
    centre = a.detach().mean(0)
    ac, bc = a - centre, b - centre
    scale = (ac * ac).sum(1)[:, None] + (bc * bc).sum(1)[None, :]
    square = scale - 2 * ac @ bc.T
    near = square.detach() <= max(1e-2, 1e-4 * d) * scale.detach()
    count = int(near.sum())
    if count > near.numel() // 16:
        return _exact_cdist(a, b)
    distances = square.masked_fill(near, 1.0).sqrt()  # no square root of a rounded zero, nor its infinite gradient
    if count == 0:
        return distances
    i, j = near.nonzero(as_tuple=True)
    return distances.index_put((i, j), torch.linalg.vector_norm(a[i] - b[j], dim=1))


def pairwise_distance_sum(a: Tensor, b: Tensor | None = None) -> Tensor:
    r"""Return :math:`\sum_{i,j} |a_i - b_j|`, or with ``b=None`` the within-sample sum
    :math:`\sum_{i \ne i'} |a_i - a_{i'}|`, of which only the blocks on and above the diagonal are computed (those
    above it doubled).

    Exact distances (``_distances``), in blocks of at most ``_BLOCK_ELEMENTS`` distances, so memory stays bounded
    whatever the sample sizes; differentiable.
    """
    n = a.shape[0]
    if b is not None:
        rows = max(1, _BLOCK_ELEMENTS // max(1, b.shape[0]))
        return sum((_distances(block, b).sum() for block in a.split(rows)), a.new_zeros(()))
    # square blocks on the diagonal (at least 4, so that the triangle saves work), rectangles to their right
    rows = max(1, min(-(-n // 4), _BLOCK_ELEMENTS // max(1, n)))
    total = a.new_zeros(())
    for start in range(0, n, rows):
        block, later = a[start : start + rows], a[start + rows :]
        total = total + _distances(block, block).sum()
        if len(later):
            total = total + 2 * _distances(block, later).sum()
    return total


def energy_distance(x: Tensor, y: Tensor, unbiased: bool = False) -> Tensor:
    r"""Energy distance :eq:`energy-distance` between the samples ``x`` (n, d) and ``y`` (m, d).

    .. math::
        \hat{\mathcal E}_V = \frac{2}{nm}\sum_{i,j}|x_i - y_j|
            - \frac{1}{n^2}\sum_{i,i'}|x_i - x_{i'}| - \frac{1}{m^2}\sum_{j,j'}|y_j - y_{j'}|

    With ``unbiased=True`` the within-sample sums are divided by :math:`n(n-1)` and :math:`m(m-1)`
    (the U-statistic; it can be slightly negative). Differentiable in both arguments, on any device;
    the result is a 0-d tensor of the inputs' dtype.
    """
    x = as_points(x, name="x")
    y = as_points(y, dim=x.shape[1], name="y")
    if x.dtype != y.dtype:
        raise ValueError(f"x and y must have one dtype; got {x.dtype} and {y.dtype} (convert one, e.g. y.to(x.dtype))")
    n, m = x.shape[0], y.shape[0]
    if unbiased and min(n, m) < 2:
        raise ValueError(f"the U-statistic needs at least 2 points in each sample; got n={n}, m={m}")
    dn, dm = (n * (n - 1), m * (m - 1)) if unbiased else (n * n, m * m)
    xy = pairwise_distance_sum(x, y) / (n * m)
    xx = pairwise_distance_sum(x) / dn
    yy = pairwise_distance_sum(y) / dm
    return 2 * xy - xx - yy


def energy_test(
    x: Tensor,
    y: Tensor,
    n_permutations: int = 999,
    generator: torch.Generator | None = None,
) -> tuple[float, float]:
    r"""Permutation two-sample test of :math:`H_0: X \overset{d}{=} Y` with the energy statistic.

    The statistic is :math:`T = \frac{nm}{n+m}\hat{\mathcal E}_V(x, y)` (as in Székely & Rizzo 2004 and
    ``dcor.homogeneity.energy_test``). Under :math:`H_0` the pooled sample is exchangeable, so relabelling
    it at random gives draws of :math:`T` under the null; the p-value is

    .. math::
        p = \frac{1 + \#\{b : T_b \ge T\}}{1 + B},

    which is exact (valid at every level) for any sample size. The pooled distance matrix :math:`D` is
    computed once; each batch of relabellings costs one matrix product.

    Returns:
        ``(T, p)`` as Python floats.
    """
    x = as_points(x, name="x")
    y = as_points(y, dim=x.shape[1], name="y")
    z = torch.cat([x, y]).detach().to(torch.float64)
    N = len(z)
    D = torch.empty(N, N, dtype=torch.float64, device=z.device)
    rows = max(1, _BLOCK_ELEMENTS // N)
    for start in range(0, N, rows):
        D[start : start + rows] = _distances(z[start : start + rows], z)
    return _permutation_test(D, len(x), n_permutations, generator)


def mmd_test(
    x: Tensor,
    y: Tensor,
    kernel: Callable[[Tensor, Tensor], Tensor],
    n_permutations: int = 999,
    generator: torch.Generator | None = None,
) -> tuple[float, float]:
    r"""The same permutation test with the squared MMD of ``kernel`` (``kernel(a, b)``: the matrix of
    :math:`k(a_i, b_j)`), :math:`T = \frac{nm}{n+m}\widehat{\mathrm{MMD}}{}^2_V`: :func:`energy_test` is this test
    with the matrix :math:`-\lVert x - y\rVert` in place of the kernel's, so with the distance-induced kernel
    :math:`\tfrac12(\lVert x\rVert + \lVert y\rVert - \lVert x - y\rVert)` the statistic is half the energy
    statistic and the p-value the same. Returns ``(T, p)``."""
    x = as_points(x, name="x")
    y = as_points(y, dim=x.shape[1], name="y")
    z = torch.cat([x, y]).detach().to(torch.float64)
    return _permutation_test(-kernel(z, z), len(x), n_permutations, generator)


def _permutation_test(D: Tensor, n: int, n_permutations: int, generator: torch.Generator | None
                      ) -> tuple[float, float]:
    r"""The permutation test on the pooled matrix ``D`` (N, N) whose first ``n`` rows are the x-sample: the statistic
    :math:`\frac{nm}{N}(2\bar D_{xy} - \bar D_{xx} - \bar D_{yy})` (V-statistic means) and its p-value
    (:func:`energy_test`); each batch of relabellings costs one matrix product."""
    n_permutations = positive_int(n_permutations, "n_permutations")
    N = len(D)
    m = N - n
    scale = n * m / N
    row_sums = D.sum(1, keepdim=True)

    def statistic(a: Tensor) -> Tensor:
        """T for label columns ``a`` (N, B) with 1 marking the x-sample (D b = D 1 - D a: one product)."""
        b = 1 - a
        Da = D @ a
        sxy = (b * Da).sum(0)
        sxx = (a * Da).sum(0)
        syy = (b * (row_sums - Da)).sum(0)
        return scale * (2 * sxy / (n * m) - sxx / n**2 - syy / m**2)

    labels = torch.zeros(N, 1, dtype=torch.float64, device=D.device)
    labels[:n] = 1
    observed = statistic(labels)[0]
    exceed = 0
    batch = max(1, min(n_permutations, _BLOCK_ELEMENTS // N))
    done = 0
    while done < n_permutations:
        b = min(batch, n_permutations - done)
        perms = torch.argsort(torch.rand(b, N, generator=generator), dim=1)
        a = (perms < n).to(torch.float64).T.to(D.device)
        exceed += int((statistic(a) >= observed * (1 - 1e-12)).sum())
        done += b
    return float(observed), (1 + exceed) / (1 + n_permutations)


def bootstrap_interval(statistic: Callable[..., Tensor | float], *samples: Tensor, resamples: int = 200,
                       level: float = 0.95, generator: torch.Generator | None = None) -> tuple[float, float]:
    r"""The percentile bootstrap interval (Efron 1979) of ``statistic(*samples)``: each of ``resamples`` times, every
    sample is redrawn with replacement (rows, independently of the others) and the statistic recomputed; the
    interval runs from the :math:`(1 - \ell)/2` to the :math:`(1 + \ell)/2` quantile of those values, :math:`\ell` =
    ``level``. It says how much the number would move with other samples of the same sizes (not how far an
    estimator's bias puts it from the truth)."""
    if not 0 < level < 1:
        raise ValueError(f"level must lie in (0, 1); got {level!r}")
    if not samples:
        raise ValueError("give the samples the statistic is computed on")
    values = []
    for _ in range(positive_int(resamples, "resamples")):
        drawn = [s[torch.randint(len(s), (len(s),), generator=generator)] for s in samples]
        values.append(float(statistic(*drawn)))
    spread = torch.tensor(values, dtype=torch.float64)
    low, high = torch.quantile(spread, torch.tensor([(1 - level) / 2, (1 + level) / 2], dtype=torch.float64))
    return float(low), float(high)


def grid_2d(bound: float, n: int = 200, dtype: torch.dtype = torch.float64) -> tuple[Tensor, Tensor, Tensor]:
    """A square grid of ``n`` x ``n`` cell centres on :math:`[-b, b]^2`.

    Returns ``(xs, ys, points)``: the axis coordinates (n,) each and the points (n*n, 2), row-major in y
    so that ``values.reshape(n, n)`` is an image with y along the rows.
    """
    h = 2 * bound / n
    xs = torch.linspace(-bound + h / 2, bound - h / 2, n, dtype=dtype)
    yy, xx = torch.meshgrid(xs, xs, indexing="ij")
    return xs, xs.clone(), torch.stack([xx.flatten(), yy.flatten()], dim=1)


def _per_point(logp: Tensor, n: int) -> Tensor:
    """Check that a log-density returned one value per point: shape (n,)."""
    if not isinstance(logp, Tensor) or tuple(logp.shape) != (n,):
        shape = tuple(logp.shape) if isinstance(logp, Tensor) else type(logp).__name__
        raise ValueError(f"log_prob must return one log-density per point, shape ({n},); got {shape} (a per-dimension "
                         "log-density must be summed over the dimensions first)")
    return logp


def integrate_2d(log_prob: Callable[[Tensor], Tensor], bound: float, n: int = 400) -> float:
    r"""Midpoint-rule integral :math:`\int_{[-b,b]^2} \exp(\log p(x))\,dx` of a 2-D log-density.

    A correct density integrates to (nearly) one when :math:`[-b, b]^2` holds its mass.
    """
    return math.exp(log_integrate_2d(log_prob, bound, n))


def log_integrate_2d(log_f: Callable[[Tensor], Tensor], bound: float, n: int = 400) -> float:
    r""":math:`\log\int_{[-b,b]^2} e^{\log f(x)}\,dx` by the midpoint rule on the :math:`n \times n` grid of
    :func:`grid_2d`, summed in log space (log-sum-exp), so that an unnormalised :math:`f` of any scale (an EBM's
    :math:`e^{-E_\theta}`) neither overflows nor underflows. ``log_f`` gets float64 points on the CPU."""
    positive_int(n, "n")
    _, _, points = grid_2d(bound, n)
    with torch.no_grad():
        logp = torch.cat([_per_point(log_f(chunk), len(chunk)).double().cpu() for chunk in points.split(65536)])
    return float(torch.logsumexp(logp, 0)) + 2 * math.log(2 * bound / n)


def held_out_nll(log_prob: Callable[[Tensor], Tensor], x: Tensor, chunk: int = 5000) -> tuple[float, float]:
    r"""The negative log-likelihood of held-out points and its standard error, in nats per example:

    .. math::
        \widehat{\mathrm{NLL}} = -\frac1n \sum_{i=1}^n \log p_\theta(x_i), \qquad
        \mathrm{se} = \frac{\operatorname{std}_i \log p_\theta(x_i)}{\sqrt n}.

    On fresh samples its expectation is :math:`H(P_X) + \mathrm{KL}(P_X \| p_\theta) \ge H(P_X)`.
    ``log_prob`` is called without gradients, ``chunk`` rows at a time.
    """
    x = as_points(x)
    with torch.no_grad():
        logp = torch.cat([_per_point(log_prob(part), len(part))
                          for part in x.split(positive_int(chunk, "chunk"))]).double()
    return float(-logp.mean()), float(logp.std() / math.sqrt(len(logp)))


def bits_per_dim(nll_nats: float, dim: int) -> float:
    r"""Convert a negative log-likelihood in nats per example to bits per dimension, :math:`\mathrm{nll}/(d\ln 2)`."""
    return nll_nats / (positive_int(dim, "dim") * math.log(2))


def mode_coverage(samples: Tensor, means: Tensor, std: float, *, within: float = 3.0, min_count: int = 20
                  ) -> tuple[int, float]:
    r"""Mode collapse, measured as in VEEGAN (Srivastava et al. 2017) and PacGAN (Lin et al. 2018).

    A sample is *high quality* when it lies within ``within`` standard deviations of its nearest mode,
    :math:`\min_k \lVert x - \mu_k\rVert \le 3\sigma`; a mode is *captured* when at least ``min_count``
    high-quality samples are nearest to it.

    Returns:
        ``(modes captured, fraction of high-quality samples)``.
    """
    means = as_points(means, name="means")
    samples = as_points(samples, dim=means.shape[1], name="samples")
    if not (std > 0 and within > 0):
        raise ValueError(f"std and within must be positive; got std={std!r}, within={within!r}")
    min_count = positive_int(min_count, "min_count")
    distance = torch.cdist(samples.double(), means.double())
    nearest, which = distance.min(dim=1)
    good = nearest <= within * std
    counts = torch.bincount(which[good], minlength=len(means))
    return int((counts >= min_count).sum()), float(good.double().mean())


def radial_power(images: Tensor) -> Tensor:
    r"""The power spectrum of square grey images (n, 1, s, s) or (n, s, s), averaged over the images and over
    rings of equal spatial frequency: entry :math:`r` is the mean of :math:`|\hat x(f)|^2` (unnormalised 2-D
    DFT) over the frequencies :math:`f` (in cycles per image) with :math:`\mathrm{round}(|f|) = r`, for
    :math:`r = 0, \dots, s/2`. By Parseval, :math:`\sum_f |\hat x(f)|^2 = s^2 \sum_i x_i^2`: white noise of
    variance :math:`\sigma^2` has power :math:`\sigma^2 s^2` at every frequency. How much of an image's detail
    lies beyond a frequency (beyond a blur's or a downsampling's limit) is the sum of the entries past it."""
    if not isinstance(images, Tensor) or images.ndim not in (3, 4) or (images.ndim == 4 and images.shape[1] != 1):
        shape = tuple(images.shape) if isinstance(images, Tensor) else type(images).__name__
        raise ValueError(f"images must be grey images (n, 1, s, s) or (n, s, s); got {shape}")
    if images.numel() == 0:
        raise ValueError(f"images is empty: shape {tuple(images.shape)}; pass at least one image of at least 1 x 1")
    images = images.reshape(-1, *images.shape[-2:]).double()
    s = images.shape[-1]
    if images.shape[-2] != s:
        raise ValueError(f"images must be square; got {tuple(images.shape[-2:])} (crop them first)")
    if not torch.isfinite(images).all():
        raise ValueError("images hold NaN or infinite values")
    power = torch.fft.fft2(images).abs().pow(2).mean(dim=0)
    f = torch.fft.fftfreq(s, d=1 / s, dtype=torch.float64)
    ring = torch.hypot(f[:, None], f[None, :]).round().long().flatten()
    totals = torch.zeros(int(ring.max()) + 1, dtype=torch.float64).index_add_(0, ring, power.flatten())
    counts = torch.bincount(ring).double()
    return (totals / counts)[: s // 2 + 1]


def score_2d(samples: Tensor, name: str) -> dict[str, float]:
    r"""How close ``samples`` (n, 2) of a model come to the 2-D distribution ``name`` of
    :mod:`~dgm_course.data.toy2d`: the energy distance :math:`\hat{\mathcal E}_V` (:func:`energy_distance`) to
    ``n`` held-out points (:func:`~dgm_course.data.toy2d.held_out`) and, on the Gaussian mixtures, the modes
    captured and the fraction of high-quality samples (:func:`mode_coverage`; NaN on the other sets)."""
    x = as_points(samples, dim=2, name="samples").detach().cpu().double()
    energy = float(energy_distance(x, toy2d.held_out(name, len(x)).double()))
    out = {"energy": energy, "modes": math.nan, "hq": math.nan}
    if name in toy2d.MIXTURES:
        found, hq = mode_coverage(x, *toy2d.modes(name))
        out["modes"], out["hq"] = float(found), hq
    return out
