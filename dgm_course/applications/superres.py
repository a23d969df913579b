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

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .._checks import positive_int


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


def psnr(estimate: Tensor, target: Tensor, data_range: float = 1.0) -> Tensor:
    """:eq:`psnr` per image, in dB, for batches (n, c, h, w) of the same shape (``inf`` for identical images)."""
    estimate, target = _check(estimate), _check(target)
    if estimate.shape != target.shape:
        raise ValueError(f"estimate and target must have one shape; got {tuple(estimate.shape)} and "
                         f"{tuple(target.shape)}")
    mse = (estimate.double() - target.double()).pow(2).flatten(1).mean(dim=1)
    return 10 * torch.log10(data_range**2 / mse)


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
        nn.init.zeros_(self.tail.bias)

    def forward(self, y: Tensor) -> Tensor:
        _check(y)
        if y.shape[1] != 3:
            raise ValueError(f"SRResNet takes colour images (n, 3, h, w); got {tuple(y.shape)}")
        h = self.head(y)
        correction = self.tail(self.upsample(h + self.body(h)))
        return F.interpolate(y, scale_factor=self.factor, mode="bicubic", align_corners=False) + correction
