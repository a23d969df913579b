r"""Recovering galaxy images beyond the deconvolution limit with a conditional GAN (Schawinski et al. 2017).

A telescope records :math:`y = k * x + \varepsilon`: the galaxy :math:`x` blurred by the point-spread
function :math:`k` and buried in noise :math:`\varepsilon \sim \mathcal N(0, \sigma^2 I)`
(:mod:`dgm_course.data.galaxies` simulates the three). Classical deconvolution inverts :math:`k` using
nothing but :math:`k` and a generic prior: Richardson-Lucy iterates the multiplicative update of the Poisson
maximum-likelihood estimate, and the Wiener filter divides by :math:`\hat k` in Fourier space, damped where
:math:`|\hat k|` is small. Both are scikit-image's.

The conditional GAN instead *learns* the prior from pairs :math:`(y, x)`. Its generator :math:`G(y)` is a
U-Net, its discriminator :math:`D(y, x)` judges whether :math:`x` is a plausible sharp galaxy *for the
observation* :math:`y`, patch by patch, and (pix2pix, Isola et al. 2017, the recipe Schawinski et al. use)

.. math::
    \min_G \max_D \ \mathbb E_{y,x}\big[\log D(y, x)\big] + \mathbb E_y\big[\log(1 - D(y, G(y)))\big]
    + \lambda\, \mathbb E_{y,x} \lVert x - G(y) \rVert_1 ,
    :label: cgan

the L1 term keeping :math:`G(y)` close to the truth on average and the adversarial term pushing it off the
blurry mean towards sharp, plausible detail. The generator is trained with the non-saturating loss.

Quality is the peak signal-to-noise ratio against the truth, with each galaxy's own peak as the range,
:math:`\mathrm{PSNR} = 10 \log_{10} \big(\max x\big)^2 / \mathrm{MSE}`.
"""

from __future__ import annotations

import os

import numpy as np
import torch
from torch import Tensor, nn

from .. import budget
from .._checks import positive_int
from ..data.galaxies import Galaxies
from ..gan.losses import discriminator_loss, nonsaturating_generator_loss
from ..training import History, Phase, fit
from . import superres


def _check(images: Tensor, name: str = "images") -> Tensor:
    if not isinstance(images, Tensor) or images.ndim != 4 or images.shape[1] != 1:
        shape = tuple(images.shape) if isinstance(images, Tensor) else type(images).__name__
        raise ValueError(f"{name} must be a tensor of grey images (n, 1, h, w); got {shape}")
    if not images.is_floating_point() or not torch.isfinite(images).all():
        raise ValueError(f"{name} must hold finite floating-point values")
    return images


def psnr(estimate: Tensor, truth: Tensor) -> Tensor:
    r"""PSNR in dB of each estimate (n, 1, h, w) against its truth, the range being the truth's peak:
    :math:`10 \log_{10} (\max x)^2 / \frac1N \sum_i (\hat x_i - x_i)^2`."""
    estimate, truth = _check(estimate, "estimate"), _check(truth, "truth")
    return superres.psnr(estimate, truth, data_range=truth.double().flatten(1).amax(dim=1))


def ssim(estimate: Tensor, truth: Tensor) -> Tensor:
    """SSIM (:func:`.superres.ssim`, scikit-image's) of each estimate (n, 1, h, w) against its truth, the range
    being the truth's peak as for :func:`psnr`."""
    estimate, truth = _check(estimate, "estimate"), _check(truth, "truth")
    return superres.ssim(estimate, truth, data_range=truth.double().flatten(1).amax(dim=1))


def _classical(observed: Tensor, psf: Tensor, method) -> Tensor:
    observed = _check(observed, "observed")
    if psf.ndim != 2:
        raise ValueError(f"psf must be one 2-D kernel; got shape {tuple(psf.shape)}")
    kernel = psf.double().numpy()
    out = []
    for y in observed[:, 0].double().numpy():
        scale = max(float(y.max()), 1e-12)  # scikit-image expects values near [0, 1]
        out.append(method(np.clip(y / scale, 0, None), kernel) * scale)
    return torch.from_numpy(np.stack(out)[:, None]).to(observed.dtype)


def richardson_lucy(observed: Tensor, psf: Tensor, iterations: int = 30) -> Tensor:
    r"""Richardson-Lucy deconvolution (scikit-image) of each image: ``iterations`` of
    :math:`\hat x \leftarrow \hat x \cdot \big(k^\top * \frac{y}{k * \hat x}\big)`, which climb the Poisson
    likelihood of :math:`y`; more iterations sharpen and then amplify noise. Negative pixels are set to 0."""
    from skimage.restoration import richardson_lucy as rl

    iterations = positive_int(iterations, "iterations")
    return _classical(observed, psf, lambda y, k: rl(y, k, num_iter=iterations, clip=False))


def wiener(observed: Tensor, psf: Tensor, balance: float = 0.05) -> Tensor:
    r"""Wiener deconvolution (scikit-image) of each image: :math:`\hat x = \mathcal F^{-1}\big[\bar{\hat k}\,
    \hat y / (|\hat k|^2 + \beta |\hat \Delta|^2)\big]`, the ``balance`` :math:`\beta` trading sharpness for
    noise (a Laplacian regulariser :math:`\Delta`)."""
    from skimage.restoration import wiener as w

    if not balance > 0:
        raise ValueError(f"balance must be positive; got {balance!r}")
    return _classical(observed, psf, lambda y, k: w(y, k, balance, clip=False))


def _down(i: int, o: int) -> nn.Module:
    return nn.Sequential(nn.Conv2d(i, o, 4, stride=2, padding=1), nn.LeakyReLU(0.2))


def _up(i: int, o: int) -> nn.Module:
    return nn.Sequential(nn.ConvTranspose2d(i, o, 4, stride=2, padding=1), nn.LeakyReLU(0.2))


class UNet(nn.Module):
    r"""The generator :math:`G(y) = y + f(y)`: an encoder of ``depth`` stride-2 convolutions (``channels``,
    doubling up to four times that), a decoder of as many transposed convolutions, and skip connections that
    hand each decoder level the encoder's features at its resolution (Ronneberger et al. 2015), so fine detail
    need not pass through the bottleneck. It predicts the correction to the observation; image sides must be
    divisible by :math:`2^{\text{depth}}`."""

    def __init__(self, channels: int = 32, depth: int = 3) -> None:
        super().__init__()
        channels, self.depth = positive_int(channels, "channels"), positive_int(depth, "depth")
        widths = [channels * min(2**i, 4) for i in range(depth + 1)]
        self.inp = nn.Sequential(nn.Conv2d(1, widths[0], 3, padding=1), nn.LeakyReLU(0.2))
        self.downs = nn.ModuleList(_down(widths[i], widths[i + 1]) for i in range(depth))
        self.ups = nn.ModuleList(
            _up(widths[i + 1] * (1 if i == depth - 1 else 2), widths[i]) for i in reversed(range(depth)))
        self.out = nn.Conv2d(2 * widths[0], 1, 3, padding=1)

    def forward(self, y: Tensor) -> Tensor:
        r"""The generator's estimates :math:`G(y) = y + f(y)` (n, 1, h, w) of the sharp galaxies behind the observations
        ``y`` (n, 1, h, w), whose sides must be divisible by :math:`2^{\text{depth}}`."""
        _check(y, "observed")
        if y.shape[2] % 2**self.depth or y.shape[3] % 2**self.depth:
            raise ValueError(f"image sides must be divisible by 2^depth = {2**self.depth}; got {tuple(y.shape[2:])}")
        skips = [self.inp(y)]
        for down in self.downs:
            skips.append(down(skips[-1]))
        h = skips.pop()
        for up in self.ups:
            h = torch.cat([up(h), skips.pop()], dim=1)
        return y + self.out(h)


class PatchDiscriminator(nn.Module):
    r"""The discriminator :math:`D(y, x)`: the observation and a candidate stacked as two channels, three
    convolutions (two of stride 2), one logit per overlapping patch (PatchGAN, Isola et al. 2017): it judges
    texture and detail locally, leaving the overall agreement with the truth to the L1 term."""

    def __init__(self, channels: int = 32) -> None:
        super().__init__()
        c = positive_int(channels, "channels")
        self.net = nn.Sequential(_down(2, c), _down(c, 2 * c), nn.Conv2d(2 * c, 1, 3, padding=1))

    def forward(self, y: Tensor, x: Tensor) -> Tensor:
        """The logits :math:`D(y, x)` of candidates ``x`` for observations ``y``, both (n, 1, h, w): one per
        overlapping patch, (n, 1, h // 4, w // 4)."""
        return self.net(torch.cat([y, x], dim=1))


class GalaxyGAN(nn.Module):
    """The conditional GAN :eq:`cgan`: a :class:`UNet` generator and a :class:`PatchDiscriminator`, working on
    images divided by ``scale`` (kept with the weights) so that values are of order one."""

    scale: Tensor  # a buffer: the observations' unit

    def __init__(self, scale: float, channels: int = 32, depth: int = 3) -> None:
        super().__init__()
        if not scale > 0:
            raise ValueError(f"scale must be positive; got {scale!r}")
        self.register_buffer("scale", torch.tensor(float(scale)))
        self.generator = UNet(channels, depth)
        self.discriminator = PatchDiscriminator(channels)

    def forward(self, observed: Tensor) -> Tensor:
        """The recovered galaxies :math:`G(y)` for observations (n, 1, h, w), in the observations' units."""
        return self.generator(_check(observed, "observed") / self.scale) * self.scale

    def phases(self, *, steps: int, l1_weight: float = 100.0, adversarial: bool = True, lr: float = 2e-3,
               lr_discriminator: float = 2e-4) -> list[Phase]:
        r"""The alternating schedule of :eq:`cgan` for batches of pairs stacked as channels (observed, truth),
        already divided by ``scale``: a discriminator step, then a generator step on
        :math:`\lambda \lVert x - G(y) \rVert_1 - \log D(y, G(y))` (Adam with :math:`\beta_1 = 0.5`, the
        generator's rate decaying along a cosine). ``adversarial=False`` trains the generator on the L1 term
        alone (the baseline that shows what the discriminator adds)."""
        g, d = self.generator, self.discriminator
        opt_g = torch.optim.Adam(g.parameters(), lr=lr, betas=(0.5, 0.999))
        schedule = torch.optim.lr_scheduler.CosineAnnealingLR(opt_g, T_max=positive_int(steps, "steps"))

        def discriminator_phase(batch: Tensor) -> Tensor:
            y, x = batch[:, :1], batch[:, 1:]
            with torch.no_grad():
                fake = g(y)
            return discriminator_loss(d(y, x), d(y, fake))

        def generator_phase(batch: Tensor) -> Tensor:
            y, x = batch[:, :1], batch[:, 1:]
            fake = g(y)
            loss = l1_weight * (fake - x).abs().mean()
            return loss + nonsaturating_generator_loss(d(y, fake)) if adversarial else loss

        phases = [Phase("generator", generator_phase, opt_g, scheduler=schedule)]
        if adversarial:
            opt_d = torch.optim.Adam(d.parameters(), lr=lr_discriminator, betas=(0.5, 0.999))
            phases.insert(0, Phase("discriminator", discriminator_phase, opt_d))
        return phases


def train(galaxies: Galaxies, *, steps: int, batch_size: int = 32, channels: int = 32, depth: int = 3,
          l1_weight: float = 100.0, adversarial: bool = True, lr: float = 2e-3, seed: int = 0,
          checkpoint: str | os.PathLike[str] | None = None, progress: bool | None = None
          ) -> tuple[GalaxyGAN, History]:
    """Train a :class:`GalaxyGAN` on simulated pairs (``galaxies.observed``, ``galaxies.truth``) with
    :func:`dgm_course.training.fit`; the scale is the mean peak of the observations."""
    if not isinstance(galaxies, Galaxies):
        raise ValueError(f"galaxies must be data.galaxies.Galaxies (from simulate); got {type(galaxies).__name__}")
    torch.manual_seed(budget.seed(seed))
    scale = float(galaxies.observed.flatten(1).amax(dim=1).mean())
    model = GalaxyGAN(scale, channels, depth)
    pairs = torch.cat([galaxies.observed, galaxies.truth], dim=1) / scale
    history = fit(model, model.phases(steps=steps, l1_weight=l1_weight, adversarial=adversarial, lr=lr), pairs,
                  steps=steps, batch_size=batch_size, seed=seed, checkpoint=checkpoint, progress=progress)
    return model.cpu(), history
