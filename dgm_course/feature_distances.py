r"""Distances between two samples in a feature space: the Fréchet distance (FID's formula) and the kernel distance
(KID's), the measures image-generation papers report.

Both compare rows of features :math:`\phi(x)` of generated and of real examples (FID and KID use the pool features of
an Inception network; the numbers depend on the feature map, so they compare models only under one and the same map).

**Fréchet distance** (Dowson and Landau 1982; Heusel et al. 2017): the 2-Wasserstein distance between the Gaussians
with the two samples' means and covariances,

.. math::
    d_F^2 = \lVert \mu_1 - \mu_2 \rVert^2
    + \operatorname{tr}\Big(\Sigma_1 + \Sigma_2 - 2\big(\Sigma_1^{1/2}\,\Sigma_2\,\Sigma_1^{1/2}\big)^{1/2}\Big).

The matrix :math:`\Sigma_1^{1/2}\Sigma_2\Sigma_1^{1/2}` is symmetric positive semi-definite, so its square root's
trace is the sum of the square roots of its eigenvalues, computed by symmetric eigendecompositions in float64 (the
usual :math:`(\Sigma_1\Sigma_2)^{1/2}` by a general matrix square root is the same trace, since the two matrices are
similar, but its square root is of a non-symmetric matrix and comes back with spurious imaginary parts). The
estimate from samples is biased upward, by an amount that falls about as :math:`1/n` with the number :math:`n` of
samples, so two models compare fairly only at equal :math:`n`; Chong and Forsyth (2020) remove the bias by
computing it at several :math:`n` and extrapolating the line in :math:`1/n` to :math:`1/n = 0`
(:func:`frechet_infinity`).

**Kernel distance** (Bińkowski et al. 2018): the squared maximum mean discrepancy (Gretton et al. 2012)

.. math::
    \mathrm{MMD}_k^2 = \mathbb E\,k(X, X') + \mathbb E\,k(Y, Y') - 2\,\mathbb E\,k(X, Y),

estimated without bias by the U-statistic (within-sample pairs :math:`i \ne j`), with KID's cubic polynomial kernel
:math:`k(x, y) = (\gamma\, x^\top y + c)^3`, :math:`\gamma = 1/d`, :math:`c = 1`. The energy distance is an MMD too:
with the distance-induced kernel :math:`k(x, y) = \tfrac12(\lVert x\rVert + \lVert y\rVert - \lVert x - y\rVert)`
(Sejdinovic et al. 2013), :math:`\mathrm{MMD}_k^2 = \tfrac12\,\mathcal E(X, Y)`, and the two U-statistics agree
exactly (:func:`distance_kernel`).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from ._checks import as_points, positive_int

Kernel = Callable[[Tensor, Tensor], Tensor]
_BLOCK_ROWS = 1024  # rows of a kernel block: 1,024 x n float64 entries at a time


def _features(x: Tensor, name: str) -> Tensor:
    """``x`` as a float64 matrix of rows (n, d), n >= 2; a clear error otherwise."""
    x = as_points(x, name=name).double()
    if len(x) < 2:
        raise ValueError(f"{name} needs at least 2 rows (a covariance, a within-sample pair); got {len(x)}")
    return x


def _psd_sqrt(a: Tensor) -> Tensor:
    """The symmetric square root of a symmetric positive semi-definite matrix (negative rounding eigenvalues set
    to 0)."""
    values, vectors = torch.linalg.eigh((a + a.T) / 2)
    return (vectors * values.clamp(min=0).sqrt()) @ vectors.T


def frechet_from_moments(mu1: Tensor, sigma1: Tensor, mu2: Tensor, sigma2: Tensor) -> Tensor:
    r""":math:`d_F^2` between :math:`\mathcal N(\mu_1, \Sigma_1)` and :math:`\mathcal N(\mu_2, \Sigma_2)` (module
    docstring), in float64."""
    mu1, mu2, sigma1, sigma2 = (t.double() for t in (mu1, mu2, sigma1, sigma2))
    d = mu1.shape[0]
    if mu2.shape != (d,) or sigma1.shape != (d, d) or sigma2.shape != (d, d):
        raise ValueError(f"need two means of shape (d,) and two covariances (d, d); got {tuple(mu1.shape)}, "
                         f"{tuple(sigma1.shape)}, {tuple(mu2.shape)}, {tuple(sigma2.shape)}")
    root = _psd_sqrt(sigma1)
    middle = root @ sigma2 @ root
    cross = torch.linalg.eigvalsh((middle + middle.T) / 2).clamp(min=0).sqrt().sum()
    return (mu1 - mu2).square().sum() + torch.trace(sigma1) + torch.trace(sigma2) - 2 * cross


def frechet_distance(x: Tensor, y: Tensor) -> Tensor:
    r"""The Fréchet distance :math:`d_F^2` between the rows of ``x`` (n, d) and of ``y`` (m, d): the Gaussians of
    their means and (unbiased) covariances (module docstring). FID is this on Inception features."""
    x, y = _features(x, "x"), _features(y, "y")
    if x.shape[1] != y.shape[1]:
        raise ValueError(f"x and y must have the same number of features; got {x.shape[1]} and {y.shape[1]}")
    return frechet_from_moments(x.mean(0), torch.cov(x.T).reshape(x.shape[1], -1), y.mean(0),
                                torch.cov(y.T).reshape(y.shape[1], -1))


def frechet_infinity(x: Tensor, y: Tensor, sizes: tuple[int, ...] | None = None,
                     generator: torch.Generator | None = None) -> tuple[float, dict[int, float]]:
    r"""Chong and Forsyth's (2020) unbiased Fréchet distance: :func:`frechet_distance` between random subsets of
    ``sizes`` rows of ``x`` (default: 5 sizes evenly spaced in :math:`1/n` from a fifth of ``x`` to all of it) and
    all of ``y``, a least-squares line fitted to the values against :math:`1/n`, and its value at :math:`1/n = 0`.
    Returns that intercept and the value at each size."""
    x, y = _features(x, "x"), _features(y, "y")
    if sizes is None:
        inverse = torch.linspace(5.0 / len(x), 1.0 / len(x), 5, dtype=torch.float64)
        sizes = tuple(int(round(float(1 / v))) for v in inverse)
    if len(sizes) < 2 or not all(2 <= positive_int(n, "size") <= len(x) for n in sizes):
        raise ValueError(f"need at least two sizes between 2 and the {len(x)} rows of x; got {sizes}")
    values = {n: float(frechet_distance(x[torch.randperm(len(x), generator=generator)[:n]], y)) for n in sizes}
    inverse_n = torch.tensor([1.0 / n for n in values], dtype=torch.float64)
    design = torch.stack([torch.ones_like(inverse_n), inverse_n], dim=1)
    coefficients = torch.linalg.lstsq(design, torch.tensor(list(values.values()), dtype=torch.float64)[:, None])
    return float(coefficients.solution[0, 0]), values


def polynomial_kernel(degree: int = 3, gamma: float | None = None, coef: float = 1.0) -> Kernel:
    r"""The kernel :math:`k(x, y) = (\gamma\, x^\top y + c)^{p}` (``degree`` :math:`p`, ``coef`` :math:`c`;
    :math:`\gamma = 1/d` by default): KID's with the defaults. Returns ``k(a, b)``, the matrix of
    :math:`k(a_i, b_j)`."""
    positive_int(degree, "degree")

    def k(a: Tensor, b: Tensor) -> Tensor:
        g = 1.0 / a.shape[1] if gamma is None else gamma
        return (g * a @ b.T + coef) ** degree

    return k


def distance_kernel(a: Tensor, b: Tensor) -> Tensor:
    r"""The distance-induced kernel :math:`k(x, y) = \tfrac12(\lVert x\rVert + \lVert y\rVert - \lVert x - y\rVert)`,
    whose MMD is half the energy distance (module docstring); the matrix of :math:`k(a_i, b_j)`."""
    distances = torch.cdist(a, b, compute_mode="donot_use_mm_for_euclid_dist")  # exact: no Gram-matrix shortcut
    return 0.5 * (a.norm(dim=1)[:, None] + b.norm(dim=1)[None, :] - distances)


def mmd2(x: Tensor, y: Tensor, kernel: Kernel | None = None) -> Tensor:
    r"""The unbiased estimate of :math:`\mathrm{MMD}_k^2` between the rows of ``x`` (n, d) and ``y`` (m, d): the
    U-statistic

    .. math::
        \frac{1}{n(n-1)}\sum_{i \ne j} k(x_i, x_j) + \frac{1}{m(m-1)}\sum_{i \ne j} k(y_i, y_j)
        - \frac{2}{nm}\sum_{i, j} k(x_i, y_j),

    with KID's cubic polynomial kernel by default; in float64. It can be negative (it is unbiased for a quantity
    that is 0 when the laws agree)."""
    x, y = _features(x, "x"), _features(y, "y")
    if x.shape[1] != y.shape[1]:
        raise ValueError(f"x and y must have the same number of features; got {x.shape[1]} and {y.shape[1]}")
    k = polynomial_kernel() if kernel is None else kernel
    n, m = len(x), len(y)
    within_x = (_kernel_sum(k, x, x) - _kernel_diagonal_sum(k, x)) / (n * (n - 1))
    within_y = (_kernel_sum(k, y, y) - _kernel_diagonal_sum(k, y)) / (m * (m - 1))
    return within_x + within_y - 2 * _kernel_sum(k, x, y) / (n * m)


def _kernel_sum(k: Kernel, a: Tensor, b: Tensor) -> Tensor:
    """The sum of :math:`k(a_i, b_j)` over all pairs, by blocks of rows of ``a`` (memory bounded for large samples)."""
    return sum((k(part, b).sum() for part in a.split(_BLOCK_ROWS)), torch.zeros((), dtype=a.dtype))


def _kernel_diagonal_sum(k: Kernel, a: Tensor) -> Tensor:
    """The sum of :math:`k(a_i, a_i)`, by blocks."""
    return sum((k(part, part).diagonal().sum() for part in a.split(_BLOCK_ROWS)), torch.zeros((), dtype=a.dtype))


def kernel_distance(x: Tensor, y: Tensor, subsets: int = 100, subset_size: int = 1000,
                    generator: torch.Generator | None = None) -> tuple[float, float]:
    r"""KID as Bińkowski et al. compute it: :func:`mmd2` with the cubic polynomial kernel on ``subsets`` random pairs of
    subsets of ``subset_size`` rows of each sample (drawn without replacement within a subset; the whole sample when
    it is smaller), returned as the mean over the subsets and its standard deviation (the spread of one subset's
    estimate, not the standard error of the mean)."""
    x, y = _features(x, "x"), _features(y, "y")
    size = min(positive_int(subset_size, "subset_size"), len(x), len(y))
    values = []
    for _ in range(positive_int(subsets, "subsets")):
        i = torch.randperm(len(x), generator=generator)[:size]
        j = torch.randperm(len(y), generator=generator)[:size]
        values.append(mmd2(x[i], y[j]))
    stacked = torch.stack(values)
    return float(stacked.mean()), float(stacked.std()) if len(values) > 1 else 0.0
