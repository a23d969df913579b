"""Super-resolution's operators: the degradation on known cases (a constant stays constant, a linear ramp is
sampled at the new pixel centres), PSNR against scikit-image, patches, and the photographs it trains on."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from skimage.metrics import peak_signal_noise_ratio

from dgm_course.applications.superres import downsample, patches, psnr, upsample_bicubic
from dgm_course.data.images import PHOTOS, TEXTURES, photo


def test_downsampling_keeps_constants_and_samples_a_ramp_at_the_new_centres():
    constant = torch.full((2, 3, 32, 48), 0.37, dtype=torch.float64)
    small = downsample(constant, 4)
    assert small.shape == (2, 3, 8, 12) and torch.allclose(small, torch.full_like(small, 0.37), atol=1e-12)
    columns = torch.arange(64, dtype=torch.float64)
    ramp = (0.01 * columns).expand(1, 1, 16, 64).contiguous()
    small = downsample(ramp, 4)
    centres = 4 * torch.arange(16, dtype=torch.float64) + 1.5  # pixel j of the small image covers 4j .. 4j + 3
    interior = slice(2, 14)  # the filter reaches 8 pixels: away from the edges a ramp is reproduced exactly
    assert torch.allclose(small[0, 0, :, interior], (0.01 * centres[interior]).expand(4, 12), atol=1e-12)
    assert upsample_bicubic(small, 4).shape == ramp.shape
    with pytest.raises(ValueError, match="divisible by the factor 4"):
        downsample(torch.zeros(1, 1, 30, 32), 4)
    with pytest.raises(ValueError, match=r"shape \(n, c, h, w\)"):
        downsample(torch.zeros(30, 32), 4)


def test_psnr_agrees_with_scikit_image():
    gen = torch.Generator().manual_seed(0)
    target = torch.rand(3, 3, 20, 24, generator=gen, dtype=torch.float64)
    estimate = (target + 0.05 * torch.randn(target.shape, generator=gen, dtype=torch.float64)).clamp(0, 1)
    ours = psnr(estimate, target)
    for i in range(3):
        expected = peak_signal_noise_ratio(target[i].numpy(), estimate[i].numpy(), data_range=1.0)
        assert float(ours[i]) == pytest.approx(expected, abs=1e-10)
    assert math.isinf(float(psnr(target, target)[0]))
    assert float(psnr(torch.zeros(1, 1, 4, 4), torch.full((1, 1, 4, 4), 0.1))[0]) == pytest.approx(20.0)
    with pytest.raises(ValueError, match="one shape"):
        psnr(target, target[:, :, :10])


def test_patches_tile_the_image():
    image = torch.arange(3 * 8 * 12, dtype=torch.float64).reshape(3, 8, 12)
    tiles = patches(image, 4)
    assert tiles.shape == (6, 3, 4, 4)
    assert torch.equal(tiles[4], image[:, 4:8, 4:8])
    assert patches(image, 4, stride=2).shape == (3 * 5, 3, 4, 4)
    with pytest.raises(ValueError, match="h, w >= size"):
        patches(image, 10)


def test_the_photographs_ship_with_scikit_image():
    for name in PHOTOS + TEXTURES:
        image = photo(name)
        assert image.ndim == 3 and image.shape[0] == 3 and image.dtype == torch.float32
        assert 0 <= float(image.min()) and float(image.max()) <= 1 and min(image.shape[1:]) >= 256
    assert np.allclose(photo("camera")[0].numpy(), photo("camera")[2].numpy())  # grey: three equal channels
    with pytest.raises(ValueError, match="unknown photo 'lena'"):
        photo("lena")


def test_srresnet_starts_at_bicubic_and_upsamples_by_its_factor():
    from dgm_course.applications.superres import SRResNet

    torch.manual_seed(0)
    net = SRResNet(factor=4, channels=8, blocks=2)
    y = torch.rand(2, 3, 6, 5)
    out = net(y)
    assert out.shape == (2, 3, 24, 20)
    bicubic = torch.nn.functional.interpolate(y, scale_factor=4, mode="bicubic", align_corners=False)
    assert torch.equal(out, bicubic)  # the last layer starts at zero: training starts from the classical answer
    out.sum().backward()
    assert net.tail.weight.grad.abs().sum() > 0  # and it is trained
    assert SRResNet(factor=2, channels=4, blocks=1)(y).shape == (2, 3, 12, 10)
    with pytest.raises(ValueError, match="power of 2"):
        SRResNet(factor=3)
    with pytest.raises(ValueError, match="colour images"):
        net(torch.rand(2, 1, 6, 5))
