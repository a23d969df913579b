"""Checkers for the exercises of the evaluation chapter."""

from __future__ import annotations

from typing import Any, Callable

import torch
from torch import Tensor

from ..metrics import energy_distance
from .core import Case, Report, compare


def _reference(x: Tensor, y: Tensor) -> Tensor:
    return energy_distance(x, y)


def check_energy_distance(student: Callable[[Tensor, Tensor], Tensor]) -> Report:
    r"""Check a student's ``energy(x, y)``, the V-statistic
    :math:`\frac{2}{nm}\sum_{i,j}|x_i - y_j| - \frac{1}{n^2}\sum_{i,i'}|x_i - x_{i'}|
    - \frac{1}{m^2}\sum_{j,j'}|y_j - y_{j'}|`
    for samples ``x`` (n, d) and ``y`` (m, d), to 1e-10 in float64: two single points (hand-computable), one
    sample against itself (0), samples of different sizes in 1 and 5 dimensions, and samples with repeated
    points (distances of exactly 0)."""
    gen = torch.Generator().manual_seed(0)
    d64: dict[str, Any] = dict(dtype=torch.float64)
    x5 = torch.randn(40, 5, generator=gen, **d64)
    repeated = torch.randn(6, 2, generator=gen, **d64).repeat(3, 1)
    cases = [
        Case((torch.tensor([[0.0, 0.0]], **d64), torch.tensor([[3.0, 4.0]], **d64)),
             "x = {(0, 0)}, y = {(3, 4)}: 2 |x - y| = 10"),
        Case((x5, x5), "a sample against itself: 0"),
        Case((torch.randn(30, 1, generator=gen, **d64), torch.randn(17, 1, generator=gen, **d64) + 0.5),
             "1-D samples of sizes 30 and 17 (divide each sum by its own number of pairs)"),
        Case((x5, 1.5 * torch.randn(25, 5, generator=gen, **d64)), "5-D samples of sizes 40 and 25"),
        Case((repeated, repeated[:9] + 0.1), "samples with repeated points (distances of exactly 0)"),
    ]
    return compare(student, _reference, cases, name="energy_distance", atol=1e-10, rtol=1e-10,
                   hint="take every |x_i - y_j| from the differences, (x[:, None] - y[None]).norm(dim=-1); "
                        "torch.cdist's default route through x.y loses about 1e-10 (pass "
                        "compute_mode='donot_use_mm_for_euclid_dist'). The V-statistic keeps the pairs i = i' "
                        "(distance 0) and divides by n * n.")
