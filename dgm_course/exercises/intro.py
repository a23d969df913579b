"""Checkers for the exercises of the opening chapter (unsupervised learning and push-forwards)."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch
from sklearn.metrics import silhouette_score
from torch import Tensor

from .core import Case, Report, compare


def cauchy_generator(z: Tensor) -> Tensor:
    r"""Reference: the inverse CDF of the standard Cauchy, :math:`g(z) = \tan(\pi(z - 1/2))`."""
    return torch.tan(math.pi * (z - 0.5))


def check_cauchy_generator(g: Callable[[Tensor], Tensor]) -> Report:
    """Check a generator ``g`` with ``g(Z) ~ Cauchy(0, 1)`` for ``Z ~ U(0, 1)``: it must be the inverse CDF,
    act elementwise on tensors of any shape and keep their dtype."""
    gen = torch.Generator().manual_seed(0)
    cases = [
        Case((torch.tensor([0.5], dtype=torch.float64),), "g(0.5), the median"),
        Case((torch.tensor([0.75], dtype=torch.float64),), "g(0.75), the upper quartile"),
        Case((torch.tensor([0.1, 0.25, 0.9], dtype=torch.float64),), "g at z = 0.1, 0.25, 0.9"),
        Case((torch.rand(4, 3, generator=gen, dtype=torch.float64) * 0.98 + 0.01,), "g on a (4, 3) batch"),
        Case((torch.tensor([0.3, 0.6]),), "g on float32 input"),
    ]
    return compare(
        g,
        cauchy_generator,
        cases,
        name="cauchy_generator",
        rtol=1e-4,
        hint="solve F(x) = z for x with the Cauchy CDF F(x) = 1/2 + arctan(x)/pi; use torch functions elementwise.",
    )


def silhouette(x: Tensor, labels: Tensor) -> float:
    """Reference: the mean silhouette, computed by scikit-learn."""
    return float(silhouette_score(np.asarray(x, dtype=np.float64), np.asarray(labels)))


def check_silhouette(fn: Callable[[Tensor, Tensor], float]) -> Report:
    r"""Check a student's mean silhouette ``fn(x, labels)`` against scikit-learn.

    For point :math:`i` with :math:`a(i)` the mean distance to the other points of its cluster and
    :math:`b(i)` the smallest mean distance to another cluster, :math:`s(i) = (b - a)/\max(a, b)`,
    and :math:`s(i) = 0` when its cluster has no other point.
    """
    gen = torch.Generator().manual_seed(1)
    blobs = torch.cat([torch.randn(20, 2, generator=gen) + c
                       for c in (torch.tensor([0.0, 0.0]), torch.tensor([4.0, 0.0]), torch.tensor([0.0, 4.0]))])
    three = torch.arange(3).repeat_interleave(20)
    cases = [
        Case((torch.tensor([[0.0], [1.0], [5.0], [6.0]]), torch.tensor([0, 0, 1, 1])),
             "four points on a line, 2 clusters"),
        Case((blobs, three), "three well-separated blobs"),
        Case((blobs, torch.randint(0, 3, (60,), generator=gen)), "three blobs with random labels"),
        Case((torch.tensor([[0.0, 0.0], [0.0, 1.0], [3.0, 3.0], [9.0, 9.0]]), torch.tensor([0, 0, 1, 2])),
             "singleton clusters"),
    ]
    return compare(
        fn,
        silhouette,
        cases,
        name="silhouette",
        atol=1e-6,
        rtol=1e-6,
        hint="a(i) averages over the *other* points of i's cluster; a point alone in its cluster has s(i) = 0.",
    )
