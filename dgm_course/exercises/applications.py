"""Checkers for the exercises of the applications chapters (super-resolution, galaxies, style transfer)."""

from __future__ import annotations

from typing import Any, Callable

import numpy as np
import torch
from torch import Tensor, nn

from ..applications.style import gram, style_layer_loss
from .core import Case, Report, compare


def check_pixel_shuffle(student: Callable[[Tensor, int], Tensor]) -> Report:
    r"""Check a student's ``shuffle(h, r)``: the sub-pixel rearrangement (n, c r^2, h, w) -> (n, c, r h, r w) with
    output pixel :math:`(k, r i + a, r j + b)` taken from channel :math:`k r^2 + a r + b` at :math:`(i, j)`,
    against ``torch.nn.PixelShuffle``."""
    gen = torch.Generator().manual_seed(0)
    cases = [
        Case((torch.arange(4.0).reshape(1, 4, 1, 1), 2),
             "one pixel of 4 channels becomes a 2 x 2 block [[0, 1], [2, 3]]"),
        Case((torch.randn(2, 12, 3, 5, generator=gen), 2), "a batch of 2, 3 output channels, r = 2, a 3 x 5 image"),
        Case((torch.randn(1, 18, 4, 4, generator=gen), 3), "r = 3 (9 channels per output channel)"),
    ]
    return compare(student, lambda h, r: nn.PixelShuffle(r)(h), cases, name="pixel_shuffle", atol=0, rtol=0,
                   hint="reshape to (n, c, r, r, h, w), permute to (n, c, h, r, w, r), reshape to (n, c, r h, r w)")


def _richardson_lucy(y: Tensor, psf: Tensor, iterations: int) -> Tensor:
    from skimage.restoration import richardson_lucy

    out = richardson_lucy(y.numpy(), psf.numpy(), num_iter=iterations, clip=False)
    return torch.from_numpy(np.ascontiguousarray(out)).to(y.dtype)


def check_richardson_lucy(student: Callable[[Tensor, Tensor, int], Tensor]) -> Report:
    r"""Check a student's ``richardson_lucy(y, k, iterations)`` for a 2-D image ``y`` and an odd-sized kernel
    ``k`` (float64), starting from :math:`\hat x = 1/2` everywhere and repeating
    :math:`\hat x \leftarrow \hat x \cdot \big(\tilde k * \frac{y}{k * \hat x}\big)` (:math:`\tilde k` the flipped
    kernel, convolutions of the image's size with zeros outside), against scikit-image to 1e-8."""
    gen = torch.Generator().manual_seed(0)
    d64: dict[str, Any] = dict(dtype=torch.float64)
    box = torch.full((3, 3), 1 / 9, **d64)
    skew = torch.rand(5, 5, generator=gen, **d64)
    skew /= skew.sum()
    image = torch.rand(16, 20, generator=gen, **d64)
    cases = [
        Case((torch.ones(8, 8, **d64), box, 1), "a constant image, a 3 x 3 box kernel, one iteration"),
        Case((image, box, 5), "a random 16 x 20 image, the box kernel, 5 iterations"),
        Case((image, skew, 10), "an asymmetric 5 x 5 kernel (flip it for the correction step), 10 iterations"),
    ]
    return compare(student, _richardson_lucy, cases, name="richardson_lucy", atol=1e-8, rtol=1e-8,
                   hint="a convolution with k is torch's conv2d (a correlation) with the flipped kernel and padding "
                        "k.shape[0] // 2; the correction convolves with the flipped kernel, i.e. correlates with k")


def _style(features: Tensor, target: Tensor) -> Tensor:
    return style_layer_loss(features, gram(target)[0])


def check_style_loss(student: Callable[[Tensor, Tensor], Tensor]) -> Report:
    r"""Check a student's ``style_loss(f, a)``: the style loss :math:`E = \frac{1}{4N^2M^2}\sum_{ij}(G_{ij} - A_{ij})^2`
    of features ``f`` (1, N, h, w) against the features ``a`` (1, N, h, w) of the style image (Gram matrices
    :math:`G = FF^\top` of each, summed over positions, *not* averaged; :math:`M = hw` of ``f``)."""
    gen = torch.Generator().manual_seed(0)
    f = torch.tensor([[[[1.0, 2.0]], [[3.0, 4.0]]]], dtype=torch.float64)
    cases = [
        Case((f, torch.zeros_like(f)), "F = [[1, 2], [3, 4]] against zero features: 892 / 64"),
        Case((f, f), "a feature map against itself: 0"),
        Case((torch.randn(1, 8, 6, 6, generator=gen, dtype=torch.float64),
              torch.randn(1, 8, 6, 6, generator=gen, dtype=torch.float64)), "8 random 6 x 6 feature maps"),
    ]
    return compare(student, _style, cases, name="style_loss", atol=1e-10, rtol=1e-10,
                   hint="F = f.flatten(2)[0] is N x M; G = F @ F.T; divide the summed squares by 4 N^2 M^2")
