r"""Super-resolution (Ledig et al. 2017): recover an image :math:`x` from its :math:`\times s` smaller copy
:math:`y = D_s(x)`. This module holds the degradation :math:`D_s`, the classical answer (bicubic
interpolation), the measure of distortion, and the patches the models train on.

The peak signal-to-noise ratio of an estimate :math:`\hat x` of :math:`x` with values in :math:`[0, R]` is

.. math::
    \mathrm{PSNR}(\hat x, x) = 10 \log_{10} \frac{R^2}{\frac{1}{N}\sum_i (\hat x_i - x_i)^2} \ \text{dB},
    :label: psnr

one number per image; it rewards the pixel-wise mean, which is why a network trained for PSNR gives smooth
images.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .._checks import positive_int
from ..gan.losses import discriminator_loss, nonsaturating_generator_loss
from ..training import Phase


def _check(images: Tensor, factor: int | None = None) -> Tensor:
    if not isinstance(images, Tensor) or images.ndim != 4:
        shape = tuple(images.shape) if isinstance(images, Tensor) else type(images).__name__
        raise ValueError(f"images must be a tensor of shape (n, c, h, w); got {shape}")
    if not images.is_floating_point() or not torch.isfinite(images).all():
        raise ValueError("images must be finite floating-point values (in [0, 1])")
    if factor is not None and (images.shape[2] % factor or images.shape[3] % factor):
        raise ValueError(f"height and width must be divisible by the factor {factor}; got {tuple(images.shape[2:])}: "
                         "crop the images first")
    return images


def downsample(images: Tensor, factor: int = 4) -> Tensor:
    r"""The degradation :math:`D_s`: bicubic resampling to :math:`1/s` of the size with an antialiasing filter
    (what MATLAB's ``imresize`` does, the operator of the SRGAN paper); (n, c, h, w) -> (n, c, h/s, w/s)."""
    factor = positive_int(factor, "factor")
    images = _check(images, factor)
    return F.interpolate(images, scale_factor=1 / factor, mode="bicubic", antialias=True, align_corners=False)


def upsample_bicubic(images: Tensor, factor: int = 4) -> Tensor:
    """The classical estimate: bicubic interpolation back to ``factor`` times the size, clipped to [0, 1]."""
    factor = positive_int(factor, "factor")
    images = _check(images)
    return F.interpolate(images, scale_factor=factor, mode="bicubic", align_corners=False).clamp(0, 1)


def psnr(estimate: Tensor, target: Tensor, data_range: float | Tensor = 1.0) -> Tensor:
    """:eq:`psnr` per image, in dB, for batches (n, c, h, w) of the same shape (``inf`` for identical images);
    ``data_range`` is :math:`R`, one number or one per image."""
    estimate, target = _check(estimate), _check(target)
    if estimate.shape != target.shape:
        raise ValueError(f"estimate and target must have one shape; got {tuple(estimate.shape)} and "
                         f"{tuple(target.shape)}")
    mse = (estimate.double() - target.double()).pow(2).flatten(1).mean(dim=1)
    return 10 * torch.log10(torch.as_tensor(data_range, dtype=torch.float64) ** 2 / mse)


def ssim(estimate: Tensor, target: Tensor, data_range: float | Tensor = 1.0) -> Tensor:
    """SSIM per image (scikit-image's ``structural_similarity`` with the Gaussian windows of sigma 1.5 of Wang et
    al. 2004) for batches of grey images (n, 1, h, w); ``data_range`` is one number or one per image."""
    from skimage.metrics import structural_similarity

    estimate, target = _check(estimate), _check(target)
    if estimate.shape != target.shape or estimate.shape[1] != 1:
        raise ValueError(f"estimate and target must be grey images (n, 1, h, w) of one shape; got "
                         f"{tuple(estimate.shape)} and {tuple(target.shape)}")
    ranges = torch.as_tensor(data_range, dtype=torch.float64).expand(len(target)).tolist()
    values = [structural_similarity(t, e, data_range=r, gaussian_weights=True, sigma=1.5, use_sample_covariance=False)
              for e, t, r in zip(estimate[:, 0].double().numpy(), target[:, 0].double().numpy(), ranges)]
    return torch.tensor(values, dtype=torch.float64)


def patches(image: Tensor, size: int, stride: int | None = None) -> Tensor:
    """All ``size`` x ``size`` patches of an image (c, h, w) whose corners lie on a grid of ``stride`` (default:
    ``size``, no overlap), as a batch (n, c, size, size)."""
    size = positive_int(size, "size")
    stride = positive_int(stride if stride is not None else size, "stride")
    if image.ndim != 3 or image.shape[1] < size or image.shape[2] < size:
        raise ValueError(f"image must have shape (c, h, w) with h, w >= size = {size}; got {tuple(image.shape)}")
    tiles = image.unfold(1, size, stride).unfold(2, size, stride)  # (c, rows, cols, size, size)
    return tiles.permute(1, 2, 0, 3, 4).reshape(-1, image.shape[0], size, size).contiguous()


class ResidualBlock(nn.Module):
    r"""SRResNet's block :math:`h \mapsto h + W_2\,\mathrm{PReLU}(W_1 h)` with 3 x 3 convolutions :math:`W_1, W_2`.
    Batch normalisation, which the SRGAN paper has inside the block, is left out as in EDSR (Lim et al.
    2017), which found it hurts super-resolution and it makes small CPU batches noisy."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(channels, channels, 3, padding=1), nn.PReLU(channels),
                                  nn.Conv2d(channels, channels, 3, padding=1))

    def forward(self, h: Tensor) -> Tensor:
        r"""The block's output :math:`h + W_2\,\mathrm{PReLU}(W_1 h)`, of the shape (n, channels, height, width) of
        ``h``."""
        return h + self.body(h)


class SRResNet(nn.Module):
    r"""The generator :math:`G_\theta` of Ledig et al. (2017): a 9 x 9 convolution, ``blocks`` residual blocks
    with a long skip connection, :math:`\log_2 s` sub-pixel upsamplings (a convolution to four times the
    channels, then a pixel shuffle that rearranges them into a twice larger image), and a 9 x 9 convolution
    back to colour. One change for training in minutes: the network predicts the correction to the bicubic
    upsampling, :math:`G_\theta(y) = \mathrm{bicubic}(y) + f_\theta(y)`, with the last layer starting at zero,
    so training starts from the classical answer (the global residual of VDSR, Kim et al. 2016)."""

    def __init__(self, factor: int = 4, channels: int = 64, blocks: int = 16) -> None:
        super().__init__()
        self.factor = positive_int(factor, "factor")
        if factor & (factor - 1):
            raise ValueError(f"factor must be a power of 2 (each upsampling doubles the size); got {factor}")
        channels, blocks = positive_int(channels, "channels"), positive_int(blocks, "blocks")
        self.head = nn.Sequential(nn.Conv2d(3, channels, 9, padding=4), nn.PReLU(channels))
        self.body = nn.Sequential(*[ResidualBlock(channels) for _ in range(blocks)],
                                  nn.Conv2d(channels, channels, 3, padding=1))
        ups: list[nn.Module] = []
        for _ in range(factor.bit_length() - 1):
            ups += [nn.Conv2d(channels, 4 * channels, 3, padding=1), nn.PixelShuffle(2), nn.PReLU(channels)]
        self.upsample = nn.Sequential(*ups)
        self.tail = nn.Conv2d(channels, 3, 9, padding=4)
        nn.init.zeros_(self.tail.weight)
        if self.tail.bias is not None:
            nn.init.zeros_(self.tail.bias)

    def forward(self, y: Tensor) -> Tensor:
        r"""The super-resolved images :math:`G_\theta(y) = \mathrm{bicubic}(y) + f_\theta(y)`, (n, 3, s h, s w) with
        :math:`s` = ``factor``, of colour images ``y`` (n, 3, h, w)."""
        _check(y)
        if y.shape[1] != 3:
            raise ValueError(f"SRResNet takes colour images (n, 3, h, w); got {tuple(y.shape)}")
        h = self.head(y)
        correction = self.tail(self.upsample(h + self.body(h)))
        return F.interpolate(y, scale_factor=self.factor, mode="bicubic", align_corners=False) + correction


def luminance(images: Tensor) -> Tensor:
    r"""The luma Y of ITU-R BT.601 (MATLAB's ``rgb2ycbcr``) of RGB images (n, 3, h, w) in [0, 1], as (n, 1, h, w)
    in [16/255, 235/255]: :math:`Y = (16 + 65.481 R + 128.553 G + 24.966 B) / 255`. Super-resolution papers,
    SRGAN's included, measure PSNR and SSIM on it."""
    images = _check(images)
    if images.shape[1] != 3:
        raise ValueError(f"luminance needs RGB images (n, 3, h, w); got {tuple(images.shape)}")
    weights = images.new_tensor([65.481, 128.553, 24.966])[None, :, None, None]
    return (16 + (images * weights).sum(dim=1, keepdim=True)) / 255


def quality(estimate: Tensor, target: Tensor, factor: int = 4) -> dict[str, list[float]]:
    """PSNR and SSIM (scikit-image's ``peak_signal_noise_ratio`` and, through :func:`ssim`,
    ``structural_similarity``) of each image of a batch, the SRGAN paper's way: on the :func:`luminance`, with
    ``factor`` pixels cropped from every border (where the estimate lacks neighbours)."""
    from skimage.metrics import peak_signal_noise_ratio

    estimate, target = _check(estimate), _check(target)
    if estimate.shape != target.shape:
        raise ValueError(f"estimate and target must have one shape; got {tuple(estimate.shape)} and "
                         f"{tuple(target.shape)}")
    crop = (Ellipsis, slice(factor, -factor), slice(factor, -factor))
    a, b = luminance(estimate.clamp(0, 1).double())[crop], luminance(target.double())[crop]
    return {"psnr": [float(peak_signal_noise_ratio(t[0], e[0], data_range=1.0)) for e, t in zip(a.numpy(), b.numpy())],
            "ssim": ssim(a, b).tolist()}


def augment(images: Tensor) -> Tensor:
    """The eight symmetries of the square (four rotations, with and without a flip) of square patches
    (n, c, s, s): eight times the training data, all of it equally natural."""
    images = _check(images)
    turns = [torch.rot90(images, k, dims=(2, 3)) for k in range(4)]
    return torch.cat(turns + [t.flip(3) for t in turns])


class Discriminator(nn.Module):
    r"""SRGAN's discriminator, narrowed for a CPU: pairs of 3 x 3 convolutions (the second of stride 2) with
    leaky ReLUs, doubling the channels from ``channels``, ending in one logit per overlapping patch (as in
    PatchGAN, Isola et al. 2017) instead of the paper's dense layers: a verdict on local texture, which is where
    super-resolved images differ, from any image size. Batch normalisation is left out, as in the generator."""

    def __init__(self, channels: int = 32, stages: int = 3) -> None:
        super().__init__()
        c, stages = positive_int(channels, "channels"), positive_int(stages, "stages")
        layers: list[nn.Module] = [nn.Conv2d(3, c, 3, padding=1), nn.LeakyReLU(0.2)]
        for s in range(stages):
            i, o = c * 2 ** max(s - 1, 0), c * 2**s
            layers += [nn.Conv2d(i, o, 3, stride=2 if s == 0 else 1, padding=1), nn.LeakyReLU(0.2)]
            if s > 0:
                layers += [nn.Conv2d(o, o, 3, stride=2, padding=1), nn.LeakyReLU(0.2)]
        layers.append(nn.Conv2d(c * 2 ** (stages - 1), 1, 3, padding=1))
        self.net = nn.Sequential(*layers)

    def forward(self, images: Tensor) -> Tensor:
        """Logits (n, 1, h / 2^stages, w / 2^stages), one per patch; the losses average them."""
        return self.net(_check(images))


class SRGAN(nn.Module):
    r"""SRGAN (Ledig et al. 2017): the generator :class:`SRResNet` trained on the *perceptual* loss

    .. math::
        \ell^{SR} = \underbrace{\frac{1}{\kappa\, C W H}\lVert \Phi(x) - \Phi(G(y)) \rVert_2^2}_{\text{content (VGG)}}
        + 10^{-3} \underbrace{\big(-\log D(G(y))\big)}_{\text{adversarial}},
        :label: srgan-loss

    :math:`\Phi` being VGG-19's features (:mod:`.style`; ``layer`` ``relu2_2`` is the paper's VGG22), with a
    :class:`Discriminator` telling high-resolution patches from super-resolved ones. The content term is the mean
    squared feature error over the :math:`C \times W \times H` feature map, divided by :math:`\kappa` =
    ``feature_scale`` (1 by default; Ledig et al. average over positions only and rescale ImageNet features by
    1/12.75: either choice only rescales the content term against the adversarial weight)."""

    def __init__(self, generator: SRResNet, features: nn.Module, *, layer: str = "relu2_2", channels: int = 32,
                 adversarial_weight: float = 1e-3, feature_scale: float = 1.0) -> None:
        super().__init__()
        self.generator, self.discriminator = generator, Discriminator(channels)
        self.features = features.requires_grad_(False).eval()
        self.layer, self.adversarial_weight = layer, adversarial_weight
        self.feature_scale = feature_scale

    def forward(self, y: Tensor) -> Tensor:
        """The generator's super-resolved images :math:`G(y)` of low-resolution images ``y`` (n, 3, h, w)."""
        return self.generator(y)

    def train(self, mode: bool = True) -> SRGAN:
        r"""Set training mode (``mode``) as ``nn.Module.train`` does, but keep the feature network :math:`\Phi` in
        evaluation mode; return the model."""
        super().train(mode)
        self.features.eval()  # the feature network stays frozen
        return self

    def content_loss(self, estimate: Tensor, target: Tensor) -> Tensor:
        """The VGG content loss of :eq:`srgan-loss`: the squared feature error, averaged over features and positions."""
        phi = self.features(torch.cat([estimate, target]), [self.layer])[self.layer]
        a, b = phi.chunk(2)
        return (a - b).pow(2).mean() / self.feature_scale

    def phases(self, *, factor: int, lr: float = 1e-4, lr_discriminator: float | None = None) -> list[Phase]:
        """The alternating schedule for batches of high-resolution patches (their low-resolution copies are made
        on the fly by :func:`downsample`): a discriminator step (Adam at ``lr_discriminator``, default ``lr``),
        then a generator step on :eq:`srgan-loss` (Adam at ``lr``)."""
        g, d = self.generator, self.discriminator
        opt_g = torch.optim.Adam(g.parameters(), lr=lr, betas=(0.9, 0.999))
        opt_d = torch.optim.Adam(d.parameters(), lr=lr_discriminator or lr, betas=(0.9, 0.999))

        def discriminator_phase(x: Tensor) -> Tensor:
            with torch.no_grad():
                fake = g(downsample(x, factor))
            return discriminator_loss(d(x), d(fake))

        def generator_phase(x: Tensor) -> Tensor:
            fake = g(downsample(x, factor))
            return self.content_loss(fake, x) + self.adversarial_weight * nonsaturating_generator_loss(d(fake))

        return [Phase("discriminator", discriminator_phase, opt_d), Phase("generator", generator_phase, opt_g)]


def pixel_loss(generator: SRResNet, factor: int = 4) -> Callable[[Tensor], Tensor]:
    r"""SRResNet's training loss for a batch of high-resolution patches :math:`x`: the mean squared error
    :math:`\frac1N \lVert G(D_s(x)) - x \rVert^2`, the loss that maximises PSNR."""
    return lambda x: (generator(downsample(x, factor)) - x).pow(2).mean()
