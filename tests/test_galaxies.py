"""The galaxy simulator: the Sérsic constant puts half of the light inside r_e, the Moffat PSF has the requested
width and unit sum, the blur is a convolution (a point source becomes the PSF; agreement with scipy), and the
simulated images have the requested flux, size, noise and determinism."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.integrate
import scipy.signal
import torch

from dgm_course.data.galaxies import convolve, moffat_psf, sersic, sersic_b, simulate


@pytest.mark.parametrize("n", [0.5, 1.0, 2.5, 4.0])
def test_half_of_the_light_is_inside_the_effective_radius(n):
    b = sersic_b(n)

    def light(r):
        return math.exp(-b * ((r / 2.0) ** (1 / n) - 1)) * 2 * math.pi * r

    inside = scipy.integrate.quad(light, 0, 2.0, limit=200)[0]
    total = inside + scipy.integrate.quad(light, 2.0, math.inf, limit=200)[0]
    assert inside / total == pytest.approx(0.5, abs=1e-8)
    assert float(sersic(torch.tensor(2.0, dtype=torch.float64), n, 2.0)) == pytest.approx(1.0)  # I(r_e) = I_e
    if n == 4.0:
        assert b == pytest.approx(7.669, abs=1e-3)  # de Vaucouleurs' constant
    with pytest.raises(ValueError, match="must be positive"):
        sersic_b(0)


def test_the_moffat_psf_has_unit_sum_and_the_requested_width():
    psf = moffat_psf(41, fwhm=4.0, beta=3.0)
    assert float(psf.sum()) == pytest.approx(1.0, abs=1e-12)
    centre = psf[20, 20]
    assert float(psf[20, 22] / centre) == pytest.approx(0.5, abs=1e-12)  # half maximum at r = FWHM / 2
    assert torch.equal(psf, psf.flip(0)) and torch.equal(psf, psf.T)
    with pytest.raises(ValueError, match="odd size"):
        moffat_psf(40, 4.0)


def test_convolve_is_the_blur_of_a_point_source_and_agrees_with_scipy():
    gen = torch.Generator().manual_seed(0)
    psf = torch.rand(7, 7, generator=gen, dtype=torch.float64)  # not symmetric: catches a correlation
    point = torch.zeros(1, 1, 32, 32, dtype=torch.float64)
    point[0, 0, 10, 20] = 1.0
    blurred = convolve(point, psf)
    assert torch.allclose(blurred[0, 0, 7:14, 17:24], psf, atol=1e-15)
    assert float(blurred.sum()) == pytest.approx(float(psf.sum()))
    delta = torch.zeros(5, 5, dtype=torch.float64)
    delta[2, 2] = 1
    images = torch.randn(3, 1, 24, 20, generator=gen, dtype=torch.float64)
    assert torch.equal(convolve(images, delta), images)
    expected = np.stack([scipy.signal.fftconvolve(im[0].numpy(), psf.numpy(), mode="same") for im in images])
    assert np.allclose(convolve(images, psf)[:, 0].numpy(), expected, atol=1e-12)
    with pytest.raises(ValueError, match=r"shape \(n, 1, h, w\)"):
        convolve(images[:, 0], psf)


def test_simulated_galaxies_have_the_requested_flux_size_and_noise():
    gal = simulate(40, size=32, flux=500.0, psf_fwhm=3.0, noise_sigma=0.2, generator=torch.Generator().manual_seed(1),
                   dtype=torch.float64)
    assert gal.truth.shape == gal.observed.shape == (40, 1, 32, 32) and len(gal) == 40
    assert torch.allclose(gal.truth.sum(dim=(1, 2, 3)), torch.full((40,), 500.0, dtype=torch.float64), rtol=1e-10)
    assert (gal.truth >= 0).all()
    residual = gal.observed - convolve(gal.truth, gal.psf)
    assert float(residual.std()) == pytest.approx(0.2, rel=0.02)
    # the blur keeps the light that stays on the image: nearly all of it for a centred galaxy
    assert float(convolve(gal.truth, gal.psf).sum(dim=(1, 2, 3)).min()) > 0.95 * 500
    # the parameters are the documented ranges, and about half the galaxies have arms and clumps
    p = gal.params
    assert ((p["r_disk"] >= 3) & (p["r_disk"] <= 8)).all() and ((p["q"] >= 0.3) & (p["q"] <= 1)).all()
    assert 0.2 < float((p["arms"] > 0).double().mean()) < 0.8 and 0.2 < float((p["clumps"] > 0).double().mean()) < 0.8
    again = simulate(40, size=32, flux=500.0, psf_fwhm=3.0, noise_sigma=0.2, generator=torch.Generator().manual_seed(1),
                     dtype=torch.float64)
    assert torch.equal(again.observed, gal.observed)


def test_simulate_rejects_bad_arguments():
    with pytest.raises(ValueError, match="at least 16 pixels"):
        simulate(2, size=8)
    with pytest.raises(ValueError, match="flux and psf_fwhm must be positive"):
        simulate(2, flux=-1.0)
    with pytest.raises(ValueError, match="n must be a positive integer"):
        simulate(0)
