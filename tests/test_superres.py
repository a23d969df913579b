"""Super-resolution's operators: the degradation on known cases (a constant stays constant, a linear ramp is
sampled at the new pixel centres), PSNR against scikit-image, patches, and the photographs it trains on."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from skimage.metrics import peak_signal_noise_ratio

from dgm_course.applications.superres import (
    SRGAN,
    Discriminator,
    SRResNet,
    augment,
    downsample,
    luminance,
    patches,
    pixel_loss,
    psnr,
    quality,
    upsample_bicubic,
)
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


def test_luminance_and_quality_follow_the_papers_protocol():
    from skimage.metrics import structural_similarity

    white, black = torch.ones(1, 3, 2, 2, dtype=torch.float64), torch.zeros(1, 3, 2, 2, dtype=torch.float64)
    assert torch.allclose(luminance(white), torch.full((1, 1, 2, 2), 235 / 255, dtype=torch.float64))
    assert torch.allclose(luminance(black), torch.full((1, 1, 2, 2), 16 / 255, dtype=torch.float64))
    gen = torch.Generator().manual_seed(1)
    target = torch.rand(2, 3, 40, 36, generator=gen, dtype=torch.float64)
    estimate = (target + 0.03 * torch.randn(target.shape, generator=gen, dtype=torch.float64)).clamp(0, 1)
    q = quality(estimate, target, factor=4)
    y_est, y_tgt = luminance(estimate)[:, :, 4:-4, 4:-4], luminance(target)[:, :, 4:-4, 4:-4]
    assert q["psnr"] == pytest.approx(psnr(y_est, y_tgt).tolist(), abs=1e-10)
    expected_ssim = structural_similarity(y_tgt[1, 0].numpy(), y_est[1, 0].numpy(), data_range=1.0,
                                          gaussian_weights=True, sigma=1.5, use_sample_covariance=False)
    assert q["ssim"][1] == pytest.approx(expected_ssim, abs=1e-12) and q["ssim"][1] < 1
    with np.errstate(divide="ignore"):  # identical images: PSNR is infinite
        same = quality(target, target)
    assert same["ssim"] == pytest.approx([1.0, 1.0]) and same["psnr"] == [math.inf, math.inf]
    with pytest.raises(ValueError, match="RGB"):
        luminance(target[:, :1])


def test_augment_gives_the_eight_symmetries_of_the_square():
    x = torch.arange(9.0).reshape(1, 1, 3, 3)
    out = augment(x)
    assert out.shape == (8, 1, 3, 3)
    assert len({tuple(o.flatten().tolist()) for o in out}) == 8  # all distinct
    assert all(sorted(o.flatten().tolist()) == list(range(9)) for o in out)  # the same pixels, moved


def test_the_srgan_discriminator_and_losses():
    from dgm_course.applications.style import VGG19Features

    d = Discriminator(channels=8, stages=3)
    assert d(torch.rand(5, 3, 48, 48)).shape == (5, 1, 6, 6) and d(torch.rand(2, 3, 32, 40)).shape == (2, 1, 4, 5)
    model = SRGAN(SRResNet(4, channels=8, blocks=1), VGG19Features(), channels=8)
    x = torch.rand(4, 3, 32, 32)
    assert float(model.content_loss(x, x)) == 0.0 and float(model.content_loss(x.flip(3), x)) > 0
    assert [p.name for p in model.phases(factor=4)] == ["discriminator", "generator"]
    model.train()
    assert model.generator.training and not model.features.training  # the feature network stays frozen
    assert not any(p.requires_grad for p in model.features.parameters())
    # pixel_loss is the mean squared error of G(D(x)) against x; at the start G is bicubic
    g = SRResNet(4, channels=8, blocks=1)
    expected = (upsample_bicubic(downsample(x), 4) - x).pow(2).mean()
    with torch.no_grad():
        assert float(pixel_loss(g)(x)) == pytest.approx(float(expected), rel=1e-2)


def test_the_pixel_shuffle_checker():
    from dgm_course.exercises.applications import check_pixel_shuffle

    def shuffle(h, r):
        n, c, height, width = h.shape
        return h.reshape(n, c // r**2, r, r, height, width).permute(0, 1, 4, 2, 5, 3).reshape(
            n, c // r**2, height * r, width * r)

    assert check_pixel_shuffle(shuffle).passed
    wrong = check_pixel_shuffle(lambda h, r: h.reshape(h.shape[0], -1, h.shape[2] * r, h.shape[3] * r))
    assert not wrong.passed and "r = 3" in str(wrong)
