"""Precision, recall, density and coverage (dgm_course.fidelity) against prdc, the reference code of Naeem et al.
(2020); what each reads on samples that drop a mode or spread too wide; and the copy share on fresh samples (about q)
and on copies (about 1)."""

from __future__ import annotations

import contextlib
import io
import math

import pytest
import torch

from dgm_course.fidelity import copy_share, knn_radii, neighbour_ratio, precision_recall


def _mixture(n: int, g: torch.Generator, modes: tuple[float, ...] = (-3.0, 3.0), d: int = 2) -> torch.Tensor:
    centres = torch.tensor(modes, dtype=torch.float64)[torch.randint(len(modes), (n,), generator=g)]
    x = torch.randn(n, d, generator=g, dtype=torch.float64)
    x[:, 0] += centres
    return x


@pytest.mark.parametrize("d", [2, 16])
def test_the_four_measures_agree_with_prdc(d):
    from prdc import compute_prdc

    g = torch.Generator().manual_seed(d)
    real, fake = torch.randn(400, d, generator=g), 1.3 * torch.randn(300, d, generator=g) + 0.2
    with contextlib.redirect_stdout(io.StringIO()):  # prdc prints the sample sizes
        expected = compute_prdc(real.numpy(), fake.numpy(), nearest_k=5)
    ours = precision_recall(real, fake, k=5)
    assert ours == pytest.approx({k: float(v) for k, v in expected.items()}, abs=1e-12)


def test_knn_radii_are_the_kth_neighbour_distances():
    x = torch.tensor([[0.0], [1.0], [3.0], [7.0]])
    assert knn_radii(x, 1).tolist() == [1.0, 1.0, 2.0, 4.0]
    assert knn_radii(x, 2).tolist() == [3.0, 2.0, 3.0, 6.0]
    with pytest.raises(ValueError, match="needs more than k points"):
        knn_radii(x, 4)


def test_a_sample_against_itself_and_against_a_far_one():
    g = torch.Generator().manual_seed(1)
    x = torch.randn(200, 3, generator=g)
    assert precision_recall(x, x) == pytest.approx({"precision": 1.0, "recall": 1.0, "density": 1.0,
                                                     "coverage": 1.0})
    far = precision_recall(x, x + 100.0)
    assert far == {"precision": 0.0, "recall": 0.0, "density": 0.0, "coverage": 0.0}


def test_a_dropped_mode_costs_recall_and_a_wide_spread_costs_precision():
    """Real: two modes. A generator with one of them keeps its precision and halves its recall and coverage; one
    that spreads three times too wide keeps its recall and loses precision."""
    g = torch.Generator().manual_seed(2)
    real = _mixture(2000, g)
    one_mode = _mixture(2000, g, modes=(3.0,))
    wide = 3.0 * _mixture(2000, g)
    dropped, spread = precision_recall(real, one_mode), precision_recall(real, wide)
    assert dropped["precision"] > 0.9 and 0.4 < dropped["recall"] < 0.6 and 0.4 < dropped["coverage"] < 0.6
    assert spread["recall"] > 0.9 and spread["precision"] < 0.5 and spread["density"] < 0.5


def test_copy_share_is_about_q_for_fresh_samples_and_one_for_copies():
    """Fresh draws from the law: the share is a binomial proportion around q (99.9 % bound, plus the quantile's own
    estimation error); the training points, barely perturbed: every one is a copy."""
    g = torch.Generator().manual_seed(3)
    train, held_out, fresh = (_mixture(n, g) for n in (3000, 3000, 3000))
    q = 0.05
    share = copy_share(fresh, train, held_out, q)
    assert abs(share - q) < 3.3 * math.sqrt(2 * q * (1 - q) / 3000)
    copies = train[:500] + 1e-6 * torch.randn(500, 2, generator=g, dtype=torch.float64)
    assert copy_share(copies, train, held_out, q) == 1.0
    with pytest.raises(ValueError, match=r"q must be a share in \(0, 1\)"):
        copy_share(fresh, train, held_out, 1.0)
    with pytest.raises(ValueError, match="same number of features"):
        copy_share(fresh, train[:, :1], held_out, q)


def test_the_neighbour_ratio_flags_noisy_copies_and_not_fresh_images():
    """Issue 43's target on the course's digits (8 x 8, grey levels in [0, 1]): noisy copies of training images (noise
    of standard deviation 0.02 a pixel, a distance of about 0.16 from the original where neighbouring digits lie about
    1 apart) are flagged (d1/d2 < 1/3) for at least 95 % of them, held-out digits for at most 1 %. (At 0.05 a pixel
    the noise is a third of the way to the next digit and the rule no longer flags most copies.)"""
    from dgm_course.data import images

    train = images.load("digits", "train").images.flatten(1).double()
    test = images.load("digits", "test").images.flatten(1).double()
    g = torch.Generator().manual_seed(4)
    copies = train[torch.randperm(len(train), generator=g)[:300]]
    copies = copies + 0.02 * torch.randn(copies.shape, generator=g, dtype=torch.float64)
    assert float((neighbour_ratio(copies, train) < 1 / 3).double().mean()) >= 0.95
    assert float((neighbour_ratio(test, train) < 1 / 3).double().mean()) <= 0.01
    ratio = neighbour_ratio(test, train)
    assert ((ratio >= 0) & (ratio <= 1)).all()
    with pytest.raises(ValueError, match="at least 2 training rows"):
        neighbour_ratio(test, train[:1])
