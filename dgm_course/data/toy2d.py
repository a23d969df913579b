r"""Two-dimensional toy distributions with exact samplers and log-densities.

Six data sets of the flow literature (FFJORD, OT-Flow), each a distribution on :math:`\mathbb{R}^2`:

=============  ===========================================================================
name           distribution
=============  ===========================================================================
checkerboard   uniform on the 8 black squares of a 4x4 board covering :math:`[-4, 4]^2`
moons          two half circles (radius 2) blurred by :math:`\mathcal N(0, 0.2^2 I)`
8gaussians     8 Gaussians on a circle of radius :math:`2\sqrt2`, std :math:`0.5/\sqrt2`
25gaussians    25 Gaussians at :math:`(-4 + 2i, -4 + 2j)`, std 0.05 (the VEEGAN/PacGAN grid)
swissroll      a spiral :math:`(t\cos t, t\sin t)/5`, :math:`t \sim U[1.5\pi, 4.5\pi]`, std 0.2
rings          4 circles of radii 0.75, 1.5, 2.25, 3 (equal mass), std 0.08
=============  ===========================================================================

Every distribution except the checkerboard is a Gaussian blur of a measure on points or on a curve,

.. math::
    p(x) = \int \mathcal N(x;\, c(t),\, \sigma^2 I)\, \mathrm d\mu(t),

so its log-density is a log-sum-exp over quadrature nodes of :math:`\mu` (Gauss-Legendre on an
interval, the trapezoid rule on a circle). With nodes far denser than :math:`\sigma` this is exact to
rounding (tested: every density integrates to one, and the Monte Carlo average of
:math:`-\log p` over samples matches :func:`entropy`). The checkerboard's density is :math:`1/32` on
its squares, so its entropy is :math:`\ln 32 = 3.466` nats, the floor no model's held-out negative
log-likelihood can beat.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch
from torch import Tensor

from .. import budget
from .._checks import as_points, one_of, positive_int

NAMES = ("checkerboard", "moons", "8gaussians", "25gaussians", "swissroll", "rings")

#: Half-width of a square that holds (nearly) all of each distribution's mass; plots use it.
BOUNDS = {"checkerboard": 4.0, "moons": 4.0, "8gaussians": 4.0, "25gaussians": 5.0, "swissroll": 4.0, "rings": 4.0}


def _check_name(name: str) -> str:
    one_of(name, NAMES, "toy data set")
    return name


def sample(name: str, n: int, generator: torch.Generator | None = None) -> Tensor:
    """Draw ``n`` independent points of the distribution ``name``; returns a tensor of shape (n, 2).

    The same ``generator`` state gives the same points.
    """
    _check_name(name)
    n = positive_int(n, "n")
    g = generator

    def rand(*shape: int) -> Tensor:
        return torch.rand(*shape, generator=g)

    def randn(*shape: int) -> Tensor:
        return torch.randn(*shape, generator=g)

    if name == "checkerboard":
        # x1 uniform on [-2, 2); x2 uniform on one unit square of the column whose parity matches x1's.
        x1 = rand(n) * 4 - 2
        x2 = rand(n) - torch.randint(0, 2, (n,), generator=g) * 2.0
        x2 = x2 + torch.floor(x1) % 2
        return torch.stack([x1, x2], dim=1) * 2
    if name in ("8gaussians", "25gaussians"):
        means, std = _MIXTURES[name]()
        k = torch.randint(0, len(means), (n,), generator=g)
        return means.float()[k] + std * randn(n, 2)
    if name == "moons":
        t = math.pi * rand(n)
        upper = torch.stack([torch.cos(t), torch.sin(t)], dim=1)
        lower = torch.stack([1 - torch.cos(t), 0.5 - torch.sin(t)], dim=1)
        which = (rand(n) < 0.5).unsqueeze(1)
        return 2 * torch.where(which, upper, lower) + torch.tensor([-1.0, -0.2]) + 0.2 * randn(n, 2)
    if name == "swissroll":
        t = 1.5 * math.pi * (1 + 2 * rand(n))
        return torch.stack([t * torch.cos(t), t * torch.sin(t)], dim=1) / 5 + 0.2 * randn(n, 2)
    # rings
    radius = 0.75 * (1 + torch.randint(0, 4, (n,), generator=g).float())
    theta = 2 * math.pi * rand(n)
    return radius.unsqueeze(1) * torch.stack([torch.cos(theta), torch.sin(theta)], dim=1) + 0.08 * randn(n, 2)


#: The seed of the held-out points (:func:`held_out`), moved by ``DGM_SEED`` like every seed of the course.
HELD_OUT_SEED = 2024


def held_out(name: str, n: int) -> Tensor:
    """The held-out points every model of the course is judged on: the ``n`` points :func:`sample` draws from a
    generator seeded with :data:`HELD_OUT_SEED` (through :func:`~dgm_course.budget.seed`; the first 500 of 2,000 are
    not the 500 of ``held_out(name, 500)``). Training draws from :func:`~dgm_course.training.fit`'s own stream, so
    these points are fresh to every model."""
    return sample(name, n, torch.Generator().manual_seed(budget.seed(HELD_OUT_SEED)))


# --- exact densities --------------------------------------------------------------------------


@dataclass(frozen=True)
class _Blur:
    """A Gaussian blur of a discrete measure: sum_k w_k N(x; c_k, sigma^2 I)."""

    centres: Tensor  # (K, 2), float64
    log_weights: Tensor  # (K,), float64, logsumexp = 0
    sigma: float

    def log_density(self, x: Tensor, chunk: int = 8192) -> Tensor:
        c, lw, s2 = self.centres, self.log_weights, self.sigma**2
        out = []
        for xb in x.split(chunk):
            sq = (xb.unsqueeze(1) - c.unsqueeze(0)).pow(2).sum(-1)  # (chunk, K)
            out.append(torch.logsumexp(lw - sq / (2 * s2), dim=1) - math.log(2 * math.pi * s2))
        return torch.cat(out)

    def noised_log_density(self, x: Tensor, alpha: Tensor, sigma: Tensor) -> Tensor:
        return noised_mixture(x, self.centres.to(x), self.log_weights.to(x), self.sigma, alpha, sigma)


def noised_mixture(x: Tensor, centres: Tensor, log_weights: Tensor, std: float, alpha: Tensor, sigma: Tensor
                   ) -> Tensor:
    r"""The log-density of :math:`\alpha x_0 + \sigma\varepsilon` for :math:`x_0 \sim \sum_k w_k\mathcal N(c_k, s^2 I)`
    in :math:`\mathbb R^d`: :math:`\log\sum_k w_k\mathcal N(x;\, \alpha c_k,\, (\alpha^2 s^2 + \sigma^2) I)`,
    differentiable in ``x`` (batch, d). ``centres`` (k, d) and ``log_weights`` (k,) are in ``x``'s dtype; ``alpha``
    and ``sigma`` broadcast against (batch, 1). The one formula behind :func:`noised_log_density` and
    :func:`dgm_course.diffusion.exact.mixture`."""
    var = (alpha**2 * std**2 + sigma**2).expand(len(x), 1)
    alpha = alpha.expand(len(x), 1)
    d = x.shape[1]
    out = []
    for xb, ab, vb in zip(x.split(2048), alpha.split(2048), var.split(2048)):
        sq = (xb.unsqueeze(1) - ab.unsqueeze(1) * centres.unsqueeze(0)).pow(2).sum(-1)  # (chunk, k)
        out.append(torch.logsumexp(log_weights - sq / (2 * vb), dim=1) - 0.5 * d * torch.log(2 * math.pi * vb[:, 0]))
    return torch.cat(out)


def _gauss_legendre(a: float, b: float, k: int) -> tuple[Tensor, Tensor]:
    """Nodes and log-weights of k-point Gauss-Legendre quadrature for the *mean* over [a, b]."""
    t, w = np.polynomial.legendre.leggauss(k)
    nodes = torch.from_numpy(a + (b - a) * (t + 1) / 2)
    return nodes, torch.from_numpy(np.log(w / 2))


def _mix_8gaussians() -> tuple[Tensor, float]:
    angles = torch.arange(8, dtype=torch.float64) * (math.pi / 4)
    return 2 * math.sqrt(2) * torch.stack([torch.cos(angles), torch.sin(angles)], dim=1), 0.5 / math.sqrt(2)


def _mix_25gaussians() -> tuple[Tensor, float]:
    grid = torch.arange(-4.0, 5.0, 2.0, dtype=torch.float64)
    return torch.cartesian_prod(grid, grid), 0.05


_MIXTURES = {"8gaussians": _mix_8gaussians, "25gaussians": _mix_25gaussians}
MIXTURES: tuple[str, ...] = tuple(_MIXTURES)  #: the data sets that are Gaussian mixtures (:func:`modes`)


def modes(name: str) -> tuple[Tensor, float]:
    """The means (k, 2) and the common standard deviation of a Gaussian-mixture data set ("8gaussians",
    "25gaussians"): what :func:`dgm_course.metrics.mode_coverage` counts samples against."""
    if name not in _MIXTURES:
        raise ValueError(f"{name!r} is not a Gaussian mixture; choose one of {', '.join(_MIXTURES)}")
    means, std = _MIXTURES[name]()
    return means.float(), std


@lru_cache(maxsize=None)
def _blur(name: str) -> _Blur:
    if name in _MIXTURES:
        means, std = _MIXTURES[name]()
        return _Blur(means, torch.full((len(means),), -math.log(len(means)), dtype=torch.float64), std)
    if name == "moons":
        t, lw = _gauss_legendre(0.0, math.pi, 512)
        upper = torch.stack([torch.cos(t), torch.sin(t)], dim=1)
        lower = torch.stack([1 - torch.cos(t), 0.5 - torch.sin(t)], dim=1)
        shift = torch.tensor([-1.0, -0.2], dtype=torch.float64)
        centres = torch.cat([2 * upper + shift, 2 * lower + shift])
        return _Blur(centres, torch.cat([lw, lw]) - math.log(2), 0.2)
    if name == "swissroll":
        u, lw = _gauss_legendre(0.0, 1.0, 768)
        t = 1.5 * math.pi * (1 + 2 * u)
        return _Blur(torch.stack([t * torch.cos(t), t * torch.sin(t)], dim=1) / 5, lw, 0.2)
    if name == "rings":
        k = 512  # trapezoid rule: spectrally accurate for periodic integrands (node spacing < 0.5 sigma)
        theta = torch.arange(k, dtype=torch.float64) * (2 * math.pi / k)
        circle = torch.stack([torch.cos(theta), torch.sin(theta)], dim=1)
        centres = torch.cat([r * circle for r in (0.75, 1.5, 2.25, 3.0)])
        return _Blur(centres, torch.full((4 * k,), -math.log(4 * k), dtype=torch.float64), 0.08)
    raise AssertionError(name)  # pragma: no cover - names are checked before


def log_density(name: str, x: Tensor) -> Tensor:
    r"""Exact log-density :math:`\log p(x)` of the distribution ``name`` at the points ``x`` (batch, 2).

    The checkerboard gives :math:`-\ln 32` on its black squares and :math:`-\infty` elsewhere.
    Returns a tensor of shape (batch,) with the dtype and device of ``x``.
    """
    _check_name(name)
    x = as_points(x, dim=2)
    x64 = x.detach().to(device="cpu", dtype=torch.float64)
    if name == "checkerboard":
        cell = torch.floor(x64 / 2)
        inside = (x64.abs() <= 4).all(dim=1) & ((cell[:, 0] + cell[:, 1]) % 2 == 0)
        out = torch.where(inside, torch.tensor(-math.log(32.0), dtype=torch.float64), -math.inf)
    else:
        out = _blur(name).log_density(x64)
    return out.to(device=x.device, dtype=x.dtype)


def noised_log_density(name: str, x: Tensor, alpha: Tensor | float, sigma: Tensor | float) -> Tensor:
    r"""Exact log-density of :math:`\alpha X + \sigma\varepsilon`, :math:`X` the data set ``name``,
    :math:`\varepsilon \sim \mathcal N(0, I)` independent, at the points ``x`` (batch, 2): every set but the
    checkerboard is a mixture :math:`\sum_k w_k\mathcal N(c_k, s^2 I)`, so the noised one is
    :math:`\sum_k w_k\mathcal N(\alpha c_k, (\alpha^2 s^2 + \sigma^2) I)`. ``alpha`` and ``sigma`` are numbers or
    one per row, shape (batch, 1). Differentiable in ``x``: its gradient is the exact score of the noised data
    (:func:`~dgm_course.diffusion.exact.toy` wraps it; :class:`~dgm_course.diffusion.exact.ExactScore`
    differentiates it). Computed in the dtype of ``x``."""
    _check_name(name)
    if name == "checkerboard":
        raise ValueError("the checkerboard's noised density is not a Gaussian mixture; choose one of "
                         + ", ".join(n for n in NAMES if n != "checkerboard"))
    x = as_points(x, dim=2)
    alpha = torch.as_tensor(alpha, dtype=x.dtype, device=x.device).reshape(-1, 1)
    sigma = torch.as_tensor(sigma, dtype=x.dtype, device=x.device).reshape(-1, 1)
    for value, label in ((alpha, "alpha"), (sigma, "sigma")):
        if len(value) not in (1, len(x)):
            raise ValueError(f"{label} must be a number or one value per row of x, shape ({len(x)}, 1); got "
                             f"{len(value)} values")
    if (alpha < 0).any() or (sigma < 0).any() or ((alpha == 0) & (sigma == 0)).any():
        raise ValueError("alpha and sigma must be >= 0 and not both 0")
    return _blur(name).noised_log_density(x, alpha, sigma)


@lru_cache(maxsize=None)
def entropy(name: str) -> float:
    r"""Differential entropy :math:`H = -\int p \log p` in nats.

    Exact for the checkerboard (:math:`\ln 32`); for the others a Riemann sum on a grid with spacing
    :math:`\sigma/3` (spectrally accurate for these smooth densities; agrees with Monte Carlo in the tests).
    A model's expected negative log-likelihood on fresh data is at least this value.
    """
    _check_name(name)
    if name == "checkerboard":
        return math.log(32.0)
    blur = _blur(name)
    h = blur.sigma / 3
    lo = blur.centres.min(dim=0).values - 8 * blur.sigma
    hi = blur.centres.max(dim=0).values + 8 * blur.sigma
    xs = torch.arange(float(lo[0]), float(hi[0]) + h, h, dtype=torch.float64)
    ys = torch.arange(float(lo[1]), float(hi[1]) + h, h, dtype=torch.float64)
    grid = torch.cartesian_prod(xs, ys)
    logp = blur.log_density(grid)
    return float(-(logp.exp() * logp).sum() * h * h)
