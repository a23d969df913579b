"""The galaxy application: PSNR on a hand-computed case, the classical deconvolutions (they are scikit-image's and
they sharpen a blurred galaxy), the U-Net's and discriminator's shapes, and a conditional GAN that learns to beat
the observation within seconds."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from skimage import restoration

from dgm_course.applications.galaxy import (
    GalaxyGAN,
    PatchDiscriminator,
    UNet,
    psnr,
    richardson_lucy,
    ssim,
    train,
    wiener,
)
from dgm_course.data.galaxies import simulate


def test_psnr_uses_each_truth_peak():
    truth = torch.zeros(2, 1, 4, 4, dtype=torch.float64)
    truth[0, 0, 1, 1], truth[1, 0, 2, 2] = 2.0, 10.0
    estimate = truth + 0.1  # MSE 0.01 for both
    assert psnr(estimate, truth).tolist() == pytest.approx([10 * math.log10(4 / 0.01), 10 * math.log10(100 / 0.01)])
    with pytest.raises(ValueError, match=r"grey images \(n, 1, h, w\)"):
        psnr(estimate[:, 0], truth[:, 0])
    with pytest.raises(ValueError, match="one shape"):
        psnr(estimate[:1], truth)


def test_ssim_is_scikit_images_with_the_truths_peak_as_range():
    from skimage.metrics import structural_similarity

    g = simulate(3, size=32, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    values = ssim(g.observed, g.truth)
    t, e = g.truth[2, 0].numpy(), g.observed[2, 0].numpy()
    expected = structural_similarity(t, e, data_range=t.max(), gaussian_weights=True, sigma=1.5,
                                     use_sample_covariance=False)
    assert float(values[2]) == pytest.approx(expected, abs=1e-12)
    assert ssim(g.truth, g.truth).tolist() == pytest.approx([1.0, 1.0, 1.0])
    assert (values < 1).all()


def test_classical_deconvolution_is_scikit_images_and_sharpens_a_noise_free_galaxy():
    g = simulate(4, size=32, noise_sigma=0.0, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    rl = richardson_lucy(g.observed, g.psf, iterations=30)
    y = g.observed[1, 0].numpy()
    expected = restoration.richardson_lucy(y / y.max(), g.psf.numpy(), num_iter=30, clip=False) * y.max()
    np.testing.assert_allclose(rl[1, 0].numpy(), expected, rtol=1e-10, atol=1e-12)
    before = psnr(g.observed, g.truth)
    assert (psnr(rl, g.truth) > before + 1).all()
    assert (psnr(wiener(g.observed, g.psf, 1e-3), g.truth) > before).all()
    with pytest.raises(ValueError, match="balance must be positive"):
        wiener(g.observed, g.psf, 0.0)
    with pytest.raises(ValueError, match="one 2-D kernel"):
        richardson_lucy(g.observed, g.psf[None])


def test_the_networks_shapes_and_errors():
    y = torch.randn(3, 1, 32, 32)
    unet = UNet(channels=8, depth=3)
    assert unet(y).shape == y.shape
    assert PatchDiscriminator(8)(y, y).shape == (3, 1, 8, 8)  # one logit per patch
    with pytest.raises(ValueError, match="divisible by 2\\^depth = 8"):
        unet(torch.zeros(1, 1, 36, 36))
    with pytest.raises(ValueError, match="grey images"):
        unet(torch.zeros(1, 3, 32, 32))
    with pytest.raises(ValueError, match="scale must be positive"):
        GalaxyGAN(0.0)
    assert [p.name for p in GalaxyGAN(1.0, 8).phases(steps=10)] == ["discriminator", "generator"]
    assert [p.name for p in GalaxyGAN(1.0, 8).phases(steps=10, adversarial=False)] == ["generator"]
    with pytest.raises(ValueError, match="data.galaxies.Galaxies"):
        train(torch.zeros(4, 2, 32, 32), steps=1)


def test_the_conditional_gan_learns_to_recover_detail_the_observation_lacks():
    train_set = simulate(200, size=32, generator=torch.Generator().manual_seed(1))
    test_set = simulate(20, size=32, generator=torch.Generator().manual_seed(2))
    model, history = train(train_set, steps=150, batch_size=16, channels=8, progress=False)
    assert set(history.losses) == {"discriminator", "generator"} and len(history.losses["generator"]) == 150
    with torch.no_grad():
        estimate = model(test_set.observed)
    gain = psnr(estimate, test_set.truth).mean() - psnr(test_set.observed, test_set.truth).mean()
    assert gain > 2.0, f"the GAN gained only {float(gain):.2f} dB over the observation"


def test_the_richardson_lucy_checker():
    import torch.nn.functional as F

    from dgm_course.exercises.applications import check_richardson_lucy

    def mine(y, k, iterations, flip=True):
        pad, x = k.shape[0] // 2, torch.full_like(y, 0.5)[None, None]
        blur = (k.flip(0, 1) if flip else k)[None, None]
        for _ in range(iterations):
            x = x * F.conv2d(y[None, None] / (F.conv2d(x, blur, padding=pad) + 1e-12), k[None, None], padding=pad)
        return x[0, 0]

    assert check_richardson_lucy(mine).passed
    report = check_richardson_lucy(lambda y, k, n: mine(y, k, n, flip=False))  # forgets to flip: only the
    assert not report.passed and "asymmetric" in str(report)  # asymmetric kernel tells
