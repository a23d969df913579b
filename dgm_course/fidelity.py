r"""Fidelity, diversity and copying of a sample, from nearest neighbours in a feature space.

A distance between two samples (:mod:`dgm_course.feature_distances`, :mod:`dgm_course.metrics`) mixes two failures:
samples unlike the data (low fidelity) and data the samples never reach (low diversity: dropped modes). Kynkäänniemi
et al. (2019) separate them by estimating each sample's support as the union of balls around its points, of radius
the distance to the :math:`k`-th nearest neighbour within the sample, :math:`r_k(x)`:

.. math::
    \text{precision} = \frac1m \sum_j \mathbf 1\big[\exists i: \lVert y_j - x_i\rVert < r_k(x_i)\big],
    \qquad
    \text{recall} = \frac1n \sum_i \mathbf 1\big[\exists j: \lVert x_i - y_j\rVert < r_k(y_j)\big],

for real points :math:`x_1..x_n` and generated :math:`y_1..y_m`: the share of generated points inside the real
support, and of real points inside the generated one. Naeem et al. (2020) add **density**, how many real balls
contain a generated point on average (:math:`\frac{1}{km}\sum_j\sum_i \mathbf 1[\lVert y_j - x_i\rVert < r_k(x_i)]`,
1 in expectation for a perfect model and less sensitive to real outliers than precision) and **coverage**, the share
of real balls that hold at least one generated point.

**Copying.** A model that reproduces its training examples scores well on all of these. :func:`copy_share` compares
each generated point's distance to its nearest training point with the same distance for fresh real points (held
out from training): the share of generated points nearer to the training set than the :math:`q`-quantile of the
held-out points' distances is about :math:`q` for a model whose samples are as new as fresh data, and near 1 for
one that copies. :func:`neighbour_ratio` looks at each sample alone: the distance to its nearest training point over
the distance to its second nearest, :math:`d_1/d_2`; a copy (with a little noise) sits much nearer to one training
point than to any other, and a ratio below 1/3 flags it (the rule of Yoon et al. 2023).
"""

from __future__ import annotations

import torch
from torch import Tensor

from ._checks import as_points, positive_int

_BLOCK_ROWS = 2048  # rows of a distance block: n x 2048 float64 entries at a time


def _rows(x: Tensor, name: str) -> Tensor:
    return as_points(x, name=name).double()


def _nearest(a: Tensor, b: Tensor) -> Tensor:
    """The distance from each row of ``a`` to its nearest row of ``b``, by blocks of rows of ``a``."""
    return torch.cat([torch.cdist(part, b).min(dim=1).values for part in a.split(_BLOCK_ROWS)])


def knn_radii(x: Tensor, k: int = 3) -> Tensor:
    r""":math:`r_k(x_i)`: the distance from each row of ``x`` to its ``k``-th nearest other row."""
    x = _rows(x, "x")
    if not positive_int(k, "k") < len(x):
        raise ValueError(f"k = {k} needs more than k points; got {len(x)}")
    return torch.cat([torch.cdist(part, x).kthvalue(k + 1, dim=1).values for part in x.split(_BLOCK_ROWS)])


def precision_recall(real: Tensor, fake: Tensor, k: int = 3) -> dict[str, float]:
    """Precision, recall, density and coverage (module docstring) of the generated rows ``fake`` against the real rows
    ``real``, with the ``k``-th neighbour radii; each is a share in [0, 1] except density (>= 0)."""
    real, fake = _rows(real, "real"), _rows(fake, "fake")
    if real.shape[1] != fake.shape[1]:
        raise ValueError(f"real and fake must have the same number of features; got {real.shape[1]} and "
                         f"{fake.shape[1]}")
    r_real, r_fake = knn_radii(real, k), knn_radii(fake, k)
    inside_real = torch.zeros(len(fake), dtype=torch.long)  # real balls holding each generated point
    covered = torch.zeros(len(real), dtype=torch.bool)  # real points inside a generated ball
    nearest_fake = torch.empty(len(real), dtype=torch.float64)
    start = 0
    for part in real.split(_BLOCK_ROWS):
        d = torch.cdist(part, fake)  # (block, m)
        radius = r_real[start:start + len(part), None]
        inside_real += (d < radius).sum(dim=0)
        covered[start:start + len(part)] = (d < r_fake[None, :]).any(dim=1)
        nearest_fake[start:start + len(part)] = d.min(dim=1).values
        start += len(part)
    return {"precision": float((inside_real > 0).double().mean()), "recall": float(covered.double().mean()),
            "density": float(inside_real.double().mean() / k),
            "coverage": float((nearest_fake < r_real).double().mean())}


def neighbour_ratio(fake: Tensor, train: Tensor) -> Tensor:
    r""":math:`d_1/d_2` for each generated row of ``fake``: its distance to the nearest training row of ``train`` over
    its distance to the second nearest (module docstring); shape (m,), in [0, 1]."""
    fake, train = _rows(fake, "fake"), _rows(train, "train")
    if fake.shape[1] != train.shape[1]:
        raise ValueError(f"fake and train must have the same number of features; got {fake.shape[1]} and "
                         f"{train.shape[1]}")
    if len(train) < 2:
        raise ValueError(f"the ratio needs at least 2 training rows; got {len(train)}")
    two = torch.cat([torch.cdist(part, train).topk(2, dim=1, largest=False).values for part in fake.split(_BLOCK_ROWS)])
    return two[:, 0] / two[:, 1].clamp(min=torch.finfo(torch.float64).tiny)


def copy_share(fake: Tensor, train: Tensor, held_out: Tensor, q: float = 0.01) -> float:
    r"""The share of generated rows ``fake`` nearer to the training rows ``train`` than the ``q``-quantile of the
    held-out rows' distances to ``train`` (module docstring): about ``q`` for samples as new as fresh data, near 1
    for copies."""
    fake, train, held_out = _rows(fake, "fake"), _rows(train, "train"), _rows(held_out, "held_out")
    if not 0 < q < 1:
        raise ValueError(f"q must be a share in (0, 1); got {q!r}")
    if not fake.shape[1] == train.shape[1] == held_out.shape[1]:
        raise ValueError(f"fake, train and held_out must have the same number of features; got {fake.shape[1]}, "
                         f"{train.shape[1]} and {held_out.shape[1]}")
    threshold = torch.quantile(_nearest(held_out, train), q)
    return float((_nearest(fake, train) < threshold).double().mean())
