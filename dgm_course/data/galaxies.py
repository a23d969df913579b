r"""Simulated galaxy images with their ground truth: the data of the deconvolution application (Schawinski et
al. 2017), which recovers galaxy features blurred by the atmosphere and the telescope.

A galaxy is a bulge and a disk, each a Sérsic profile (Sérsic 1963),

.. math::
    I(r) = I_e \exp\!\Big(-b_n\big[(r / r_e)^{1/n} - 1\big]\Big),
    \qquad \gamma(2n, b_n) = \tfrac12\,\Gamma(2n),
    :label: sersic

where :math:`r_e` encloses half of the light and :math:`b_n` is fixed by that condition (:func:`sersic_b`);
the bulge has :math:`n = 4` (de Vaucouleurs), the disk :math:`n = 1` (exponential), inclined by an axis ratio
:math:`q` and turned by an angle :math:`\varphi`. Some disks carry two logarithmic spiral arms, a modulation
:math:`1 + A\cos\big(2(\theta - \cot(\psi)\ln r)\big)` of the disk's light, some carry star-forming clumps
(small Gaussians). Each image is rendered with 4 x 4 samples per pixel and scaled to its total ``flux``.

The observation is the truth convolved with a point-spread function (a Moffat profile, the usual model of
atmospheric seeing, :func:`moffat_psf`) plus Gaussian noise: :math:`y = k * x + \varepsilon`
(:func:`convolve`, :func:`simulate`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from scipy.special import gammaincinv
from torch import Tensor

from .._checks import positive_int

_SUPERSAMPLE = 4


def sersic_b(n: float) -> float:
    r""":math:`b_n` of :eq:`sersic`: the solution of :math:`\gamma(2n, b_n) = \Gamma(2n)/2`, so that the radius
    :math:`r_e` encloses half of the light of a circular profile."""
    if not n > 0:
        raise ValueError(f"the Sérsic index n must be positive; got {n!r}")
    return float(gammaincinv(2 * n, 0.5))


def sersic(r: Tensor, n: float, r_e: float) -> Tensor:
    r"""The Sérsic profile :eq:`sersic` with :math:`I_e = 1` at radii ``r``."""
    return torch.exp(-sersic_b(n) * ((r / r_e) ** (1 / n) - 1))


def _grid(size: int, dtype: torch.dtype) -> tuple[Tensor, Tensor]:
    """Pixel-centre coordinates (x, y) of a size x size image with (0, 0) at its centre, each (size, size)."""
    c = torch.arange(size, dtype=dtype) - (size - 1) / 2
    y, x = torch.meshgrid(c, c, indexing="ij")
    return x, y


def moffat_psf(size: int, fwhm: float, beta: float = 3.5, dtype: torch.dtype = torch.float64) -> Tensor:
    r"""A Moffat point-spread function :math:`k(r) \propto (1 + (r/\alpha)^2)^{-\beta}` on a size x size grid
    (odd size: the peak on the centre pixel), with :math:`\alpha = \mathrm{FWHM} / (2\sqrt{2^{1/\beta} - 1})`
    so that it falls to half its peak at :math:`r = \mathrm{FWHM}/2`; normalised to sum 1."""
    size = positive_int(size, "size")
    if size % 2 == 0 or not fwhm > 0 or not beta > 1:
        raise ValueError(f"a PSF needs an odd size, a positive FWHM and beta > 1; got size={size}, fwhm={fwhm!r}, "
                         f"beta={beta!r}")
    alpha = fwhm / (2 * math.sqrt(2 ** (1 / beta) - 1))
    x, y = _grid(size, dtype)
    k = (1 + (x**2 + y**2) / alpha**2) ** (-beta)
    return k / k.sum()


def convolve(images: Tensor, psf: Tensor) -> Tensor:
    r"""The blur :math:`k * x` of images (n, 1, h, w) by a PSF (s, s) with odd s, centred, zero outside the
    image (what a detector sees of a field beyond its edge is not modelled); the same size out as in."""
    if images.ndim != 4 or images.shape[1] != 1:
        raise ValueError(f"images must have shape (n, 1, h, w); got {tuple(images.shape)}")
    if psf.ndim != 2 or psf.shape[0] != psf.shape[1] or psf.shape[0] % 2 == 0:
        raise ValueError(f"the PSF must be a square (s, s) with odd s; got {tuple(psf.shape)}")
    kernel = psf.flip(0, 1).to(images)[None, None]  # conv2d correlates; flipping the kernel makes it a convolution
    return F.conv2d(images, kernel, padding=psf.shape[0] // 2)


@dataclass
class Galaxies:
    """Simulated galaxies: ``truth`` and ``observed`` images (n, 1, size, size), the ``psf``, the noise's
    standard deviation, and each galaxy's parameters (one tensor of n values per name)."""

    truth: Tensor
    observed: Tensor
    psf: Tensor
    noise_sigma: float
    params: dict[str, Tensor]

    def __len__(self) -> int:
        return len(self.truth)


def _render(size: int, p: dict[str, Tensor], i: int, gen: torch.Generator, dtype: torch.dtype) -> Tensor:
    """One galaxy, supersampled and averaged back to pixels; arbitrary units (scaled to its flux later)."""
    s = size * _SUPERSAMPLE
    x, y = _grid(s, dtype)
    x, y = x / _SUPERSAMPLE - p["x0"][i], y / _SUPERSAMPLE - p["y0"][i]
    cos, sin = math.cos(p["angle"][i]), math.sin(p["angle"][i])
    u, v = cos * x + sin * y, -sin * x + cos * y  # the disk's axes
    r_disk = torch.sqrt(u**2 + (v / p["q"][i]) ** 2 + 1e-12)
    disk = sersic(r_disk, 1.0, float(p["r_disk"][i]))
    if p["arms"][i] > 0:
        theta = torch.atan2(v / p["q"][i], u)
        pitch = float(p["pitch"][i])
        disk = disk * (1 + p["arms"][i] * torch.cos(2 * (theta - torch.log(r_disk + 1e-3) / math.tan(pitch))))
    disk = disk / disk.sum()
    bulge_r = torch.sqrt(u**2 + (v / (0.5 + 0.5 * p["q"][i])) ** 2 + 1e-12)  # rounder than the disk
    bulge = sersic(bulge_r, 4.0, float(p["r_bulge"][i]))
    bulge = bulge / bulge.sum()
    image = p["bulge_fraction"][i] * bulge + (1 - p["bulge_fraction"][i]) * disk
    for _ in range(int(p["clumps"][i])):
        radius = float(p["r_disk"][i]) * (0.5 + torch.rand((), generator=gen, dtype=dtype))
        phi = 2 * math.pi * float(torch.rand((), generator=gen, dtype=dtype))
        cu, cv = radius * math.cos(phi), radius * math.sin(phi) * p["q"][i]
        width = 0.6 + 0.4 * float(torch.rand((), generator=gen, dtype=dtype))
        clump = torch.exp(-((u - cu) ** 2 + (v - cv) ** 2) / (2 * width**2))
        image = image + 0.04 * clump / clump.sum()
    return image.reshape(size, _SUPERSAMPLE, size, _SUPERSAMPLE).mean(dim=(1, 3))


def simulate(n: int, size: int = 48, *, flux: float = 1000.0, psf_fwhm: float = 4.0, noise_sigma: float = 0.5,
             generator: torch.Generator | None = None, dtype: torch.dtype = torch.float32) -> Galaxies:
    """Simulate ``n`` galaxies of ``size`` x ``size`` pixels, each with total ``flux``, observed through a
    Moffat PSF of ``psf_fwhm`` pixels with Gaussian noise of standard deviation ``noise_sigma``.

    Parameters are drawn per galaxy: centre within one pixel of the middle, disk half-light radius 3-8 px and
    axis ratio 0.3-1 at any angle, bulge half-light radius 1-2.5 px holding 10-60 % of the light, spiral arms
    (amplitude 0.4-0.9, pitch 12-30 degrees) on half of the disks, 2-6 clumps on half of the galaxies.
    """
    n, size = positive_int(n, "n"), positive_int(size, "size")
    if size < 16:
        raise ValueError(f"size must be at least 16 pixels to hold a galaxy; got {size}")
    if not flux > 0 or not psf_fwhm > 0 or not noise_sigma >= 0:
        raise ValueError(f"flux and psf_fwhm must be positive and noise_sigma non-negative; got flux={flux!r}, "
                         f"psf_fwhm={psf_fwhm!r}, noise_sigma={noise_sigma!r}")
    g = generator if generator is not None else torch.Generator().manual_seed(int(torch.randint(2**31, ())))
    d64 = torch.float64

    def uniform(lo: float, hi: float) -> Tensor:
        return lo + (hi - lo) * torch.rand(n, generator=g, dtype=d64)

    spiral = torch.rand(n, generator=g, dtype=d64) < 0.5
    clumpy = torch.rand(n, generator=g, dtype=d64) < 0.5
    params = {
        "x0": uniform(-1, 1), "y0": uniform(-1, 1),
        "r_disk": uniform(3, 8), "q": uniform(0.3, 1.0), "angle": uniform(0, math.pi),
        "r_bulge": uniform(1, 2.5), "bulge_fraction": uniform(0.1, 0.6),
        "arms": torch.where(spiral, uniform(0.4, 0.9), torch.zeros(n, dtype=d64)),
        "pitch": uniform(math.radians(12), math.radians(30)),
        "clumps": torch.where(clumpy, torch.randint(2, 7, (n,), generator=g).to(d64), torch.zeros(n, dtype=d64)),
    }
    truth = torch.stack([_render(size, params, i, g, d64) for i in range(n)])[:, None]
    truth = flux * truth / truth.sum(dim=(1, 2, 3), keepdim=True)
    psf = moffat_psf(2 * math.ceil(2.5 * psf_fwhm) + 1, psf_fwhm)
    observed = convolve(truth, psf)
    observed = observed + noise_sigma * torch.randn(observed.shape, generator=g, dtype=d64)
    return Galaxies(truth.to(dtype), observed.to(dtype), psf.to(dtype), float(noise_sigma), params)
