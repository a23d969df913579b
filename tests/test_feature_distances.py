"""The Fréchet and kernel distances (dgm_course.feature_distances): the Gaussian 2-Wasserstein distance in closed
form, the same trace through scipy's general matrix square root, torchmetrics' FID and KID given the same features,
the kernel distance as an unbiased U-statistic, and the energy distance as an MMD."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.linalg
import torch
from torch import nn

from dgm_course.feature_distances import (
    distance_kernel,
    frechet_distance,
    frechet_from_moments,
    frechet_infinity,
    kernel_distance,
    mmd2,
    polynomial_kernel,
)
from dgm_course.metrics import energy_distance, energy_test, mmd_test


def _covariance(d: int, seed: int) -> torch.Tensor:
    a = torch.randn(d, d, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    return a @ a.T / d + 0.1 * torch.eye(d, dtype=torch.float64)


def test_frechet_of_commuting_gaussians_is_their_2_wasserstein_distance():
    """Diagonal covariances: d_F^2 = |mu1 - mu2|^2 + sum (sqrt a_i - sqrt b_i)^2."""
    a, b = torch.tensor([1.0, 4.0, 0.25]), torch.tensor([9.0, 1.0, 0.25])
    mu1, mu2 = torch.tensor([0.0, 1.0, 2.0]), torch.tensor([1.0, 1.0, 0.0])
    expected = (mu1 - mu2).square().sum() + (a.sqrt() - b.sqrt()).square().sum()
    assert float(frechet_from_moments(mu1, torch.diag(a), mu2, torch.diag(b))) == pytest.approx(float(expected),
                                                                                                rel=1e-12)
    sigma = _covariance(5, 0)
    assert abs(float(frechet_from_moments(torch.zeros(5), sigma, torch.zeros(5), sigma))) < 1e-10  # a law to itself


@pytest.mark.parametrize("d", [2, 16, 64])
def test_frechet_agrees_with_scipys_matrix_square_root(d):
    """The usual formula tr (Sigma1 Sigma2)^(1/2) through scipy.linalg.sqrtm of the non-symmetric product."""
    s1, s2 = _covariance(d, 1), _covariance(d, 2)
    mu1, mu2 = torch.randn(d, dtype=torch.float64), torch.randn(d, dtype=torch.float64)
    root = scipy.linalg.sqrtm(s1.numpy() @ s2.numpy())
    expected = float((mu1 - mu2).square().sum()) + np.trace(s1.numpy() + s2.numpy() - 2 * root.real)
    assert float(frechet_from_moments(mu1, s1, mu2, s2)) == pytest.approx(expected, rel=1e-9)


def test_frechet_stays_real_and_non_negative_on_rank_deficient_covariances():
    """Fewer samples than features: singular covariances, where a general square root goes complex."""
    g = torch.Generator().manual_seed(3)
    x, y = torch.randn(20, 64, generator=g), torch.randn(20, 64, generator=g) + 0.5
    value = float(frechet_distance(x, y))
    assert math.isfinite(value) and value > 0
    scale = float(torch.cov(x.T.double()).trace())  # the distance of a sample to itself is 0 to rounding, relative
    assert abs(float(frechet_distance(x, x))) < 1e-6 * scale  # to this (sqrt amplifies the null eigenvalues' noise)


class _Identity(nn.Module):
    """A 'feature extractor' that returns its input: torchmetrics then computes on the features given."""

    def __init__(self, d: int) -> None:
        super().__init__()
        self.num_features = d

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


def test_frechet_and_kid_agree_with_torchmetrics_on_the_same_features():
    from torchmetrics.image.fid import FrechetInceptionDistance
    from torchmetrics.image.kid import KernelInceptionDistance

    g = torch.Generator().manual_seed(4)
    d = 8
    real = torch.randn(300, d, generator=g, dtype=torch.float64)
    fake = 1.2 * torch.randn(300, d, generator=g, dtype=torch.float64) + 0.3
    fid = FrechetInceptionDistance(feature=_Identity(d)).set_dtype(torch.float64)
    fid.update(real, real=True)
    fid.update(fake, real=False)
    assert float(frechet_distance(fake, real)) == pytest.approx(float(fid.compute()), rel=1e-6)
    kid = KernelInceptionDistance(feature=_Identity(d), subsets=1, subset_size=300)  # one subset: the whole samples
    kid.update(real, real=True)
    kid.update(fake, real=False)
    mean, _ = kid.compute()
    assert float(mmd2(fake, real)) == pytest.approx(float(mean), rel=1e-6)


def test_mmd2_is_the_u_statistic_and_unbiased():
    """Against a loop over pairs, and its mean over many independent draws from one law is 0 within 4 standard
    errors (the V-statistic, self-pairs included, is positive on average)."""
    g = torch.Generator().manual_seed(5)
    x, y = torch.randn(7, 3, generator=g, dtype=torch.float64), torch.randn(5, 3, generator=g, dtype=torch.float64)
    k = polynomial_kernel()

    def kk(a, b):
        return float(k(a[None], b[None])[0, 0])

    loop = (sum(kk(x[i], x[j]) for i in range(7) for j in range(7) if i != j) / 42
            + sum(kk(y[i], y[j]) for i in range(5) for j in range(5) if i != j) / 20
            - 2 * sum(kk(x[i], y[j]) for i in range(7) for j in range(5)) / 35)
    assert float(mmd2(x, y)) == pytest.approx(loop, rel=1e-12)
    big_x, big_y = torch.randn(2500, 4, generator=g, dtype=torch.float64), torch.randn(1500, 4, generator=g,
                                                                                      dtype=torch.float64)
    kxx, kyy = k(big_x, big_x), k(big_y, big_y)  # past the block size: the blocked sums are the whole matrices'
    whole = ((kxx.sum() - kxx.trace()) / (2500 * 2499) + (kyy.sum() - kyy.trace()) / (1500 * 1499)
             - 2 * k(big_x, big_y).mean())
    assert float(mmd2(big_x, big_y)) == pytest.approx(float(whole), rel=1e-9)
    draws = torch.stack([mmd2(torch.randn(20, 4, generator=g), torch.randn(20, 4, generator=g)) for _ in range(2000)])
    assert abs(float(draws.mean())) < 4 * float(draws.std()) / math.sqrt(len(draws))


def test_the_energy_distance_is_twice_the_mmd_of_the_distance_kernel():
    g = torch.Generator().manual_seed(6)
    x, y = torch.randn(40, 3, generator=g, dtype=torch.float64), torch.randn(30, 3, generator=g, dtype=torch.float64)
    assert float(2 * mmd2(x, y, distance_kernel)) == pytest.approx(float(energy_distance(x, y, unbiased=True)),
                                                                  rel=1e-10)


def test_kid_over_subsets_detects_a_shift_and_not_its_absence():
    g = torch.Generator().manual_seed(7)
    real, same = torch.randn(2000, 16, generator=g), torch.randn(2000, 16, generator=g)
    shifted = torch.randn(2000, 16, generator=g) + 0.2
    near, spread = kernel_distance(same, real, subsets=20, subset_size=500, generator=g)
    far, _ = kernel_distance(shifted, real, subsets=20, subset_size=500, generator=g)
    assert abs(near) < 3 * spread and far > near + 10 * spread


def test_bad_input_says_what_is_wrong():
    with pytest.raises(ValueError, match="same number of features"):
        frechet_distance(torch.randn(5, 3), torch.randn(5, 4))
    with pytest.raises(ValueError, match="at least 2 rows"):
        mmd2(torch.randn(1, 3), torch.randn(5, 3))
    with pytest.raises(ValueError, match=r"shape \(batch, features\)"):
        frechet_distance(torch.randn(5), torch.randn(5, 1))


def test_the_frechet_distance_falls_as_1_over_n_and_its_extrapolation_removes_the_bias():
    """Two Gaussians in 32 dimensions whose means differ by 0.1 in every coordinate: d_F^2 = 0.32. Computed on 1,000
    samples of x (against 20,000 of y) it is more than 0.2 too high, at 5,000 samples less so, and the line in 1/n
    through five sizes meets 0 within 0.05 of the truth (Chong and Forsyth 2020)."""
    g = torch.Generator().manual_seed(0)
    d = 32
    y = torch.randn(20_000, d, generator=g, dtype=torch.float64)
    x = torch.randn(20_000, d, generator=g, dtype=torch.float64) + 0.1
    truth = d * 0.01
    assert float(frechet_distance(x[:1000], y)) > truth + 0.2
    extrapolated, values = frechet_infinity(x, y, sizes=(1000, 1250, 1667, 2500, 5000), generator=g)
    assert values[1000] > values[5000] + 0.1  # falls as n grows (adjacent sizes are within the noise)
    assert abs(extrapolated - truth) < 0.05
    default, points = frechet_infinity(x[:5000], y, generator=g)
    assert sorted(points) == [1000, 1250, 1667, 2500, 5000] and abs(default - truth) < 0.1
    with pytest.raises(ValueError, match="at least two sizes"):
        frechet_infinity(x[:100], y, sizes=(50, 500))


def test_the_kernel_test_is_the_energy_test_with_another_kernel():
    """mmd_test with the distance-induced kernel: half the energy statistic and, under the same relabellings, the
    same p-value; with KID's kernel it rejects a shift of 1 and, on two samples of one law, rejects at level 0.05
    in a share of 200 trials within the binomial bound."""
    g = torch.Generator().manual_seed(8)
    x, y = torch.randn(60, 4, generator=g, dtype=torch.float64), torch.randn(50, 4, generator=g, dtype=torch.float64)
    t_energy, p_energy = energy_test(x, y, 199, torch.Generator().manual_seed(1))
    t_mmd, p_mmd = mmd_test(x, y, distance_kernel, 199, torch.Generator().manual_seed(1))
    assert t_mmd == pytest.approx(t_energy / 2, rel=1e-10) and p_mmd == p_energy
    kid = polynomial_kernel()
    _, p_shift = mmd_test(x + 1.0, torch.randn(200, 4, generator=g, dtype=torch.float64), kid, 199, g)
    assert p_shift <= 0.01
    rejections = sum(mmd_test(torch.randn(30, 4, generator=g), torch.randn(30, 4, generator=g), kid, 99, g)[1] <= 0.05
                     for _ in range(200))
    assert rejections / 200 <= 0.05 + 3.1 * math.sqrt(0.05 * 0.95 / 200)  # 99.9 % one-sided bound
