r"""Coupling layers (Dinh et al. 2017) and the two flows built from them.

A coupling layer splits the coordinates into a conditioning part :math:`x_a` and a transformed part
:math:`x_b`, keeps :math:`x_a`, and moves :math:`x_b` by a one-dimensional monotone map whose parameters
are computed from :math:`x_a` by a neural network :math:`\theta(\cdot)`:

.. math::
    y_a = x_a, \qquad y_b = \tau\big(x_b;\ \theta(x_a)\big).

The Jacobian is block triangular, :math:`\nabla f = \begin{pmatrix} I & 0 \\ \ast & \operatorname{diag}
\tau'(x_b) \end{pmatrix}`, so :math:`\log|\det \nabla f(x)| = \sum_i \log \tau'(x_{b,i})`, however
complicated :math:`\theta` is; and the inverse needs only :math:`\tau^{-1}`, since :math:`x_a = y_a` is known.
Layers alternate which half is kept, so that after two layers every coordinate has moved.
"""

from __future__ import annotations

import torch
from torch import Tensor

from .._checks import positive_int
from ..nets import mlp
from .base import Bijection, Compose, Flow
from .elementwise import ActNorm
from .splines import rational_quadratic_spline


class Coupling(Bijection):
    """The split of a coupling layer: coordinates ``i`` with ``i % 2 == parity`` condition the others."""

    a: Tensor  # the coordinates kept (buffers, declared for the type checker)
    b: Tensor  # the coordinates moved

    def __init__(self, dim: int, parity: int) -> None:
        super().__init__(dim)
        if dim < 2:
            raise ValueError(f"a coupling layer needs dim >= 2 (one part to keep, one to move); got dim={dim}")
        if parity not in (0, 1):
            raise ValueError(f"parity must be 0 or 1; got {parity!r}")
        index = torch.arange(dim)
        self.register_buffer("a", index[index % 2 == parity])
        self.register_buffer("b", index[index % 2 != parity])

    def _join(self, x_a: Tensor, y_b: Tensor) -> Tensor:
        y = x_a.new_empty(len(x_a), self.dim)
        y[:, self.a] = x_a
        y[:, self.b] = y_b
        return y


class AffineCoupling(Coupling):
    r"""The affine coupling layer of RealNVP (Dinh et al. 2017):

    .. math::
        y_b = x_b \odot e^{s(x_a)} + t(x_a), \qquad \log|\det \nabla f(x)| = \textstyle\sum_i s_i(x_a),

    with the log-scale softly clamped, :math:`s = c \tanh(\hat s / c)`, so that :math:`|s| < c` and one
    layer can never stretch by more than :math:`e^{c}` (:math:`c = 2` by default: with 3 the checkerboard's
    training loss showed occasional spikes of 10-20 nats). The network's last layer starts at zero: the
    layer starts as the identity.
    """

    def __init__(self, dim: int, hidden: int = 128, depth: int = 2, parity: int = 0, scale_bound: float = 2.0) -> None:
        super().__init__(dim, parity)
        if not scale_bound > 0:
            raise ValueError(f"scale_bound must be positive (it bounds the log-scales, s = B tanh(s / B)); "
                             f"got {scale_bound!r}")
        self.scale_bound = float(scale_bound)
        self.net = mlp(len(self.a), 2 * len(self.b), hidden, depth, zero_last=True)

    def _scale_shift(self, x_a: Tensor) -> tuple[Tensor, Tensor]:
        s, t = self.net(x_a).chunk(2, dim=1)
        return self.scale_bound * torch.tanh(s / self.scale_bound), t

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        r"""``(y, log|det|)``: :math:`y_a = x_a`, :math:`y_b = x_b \odot e^{s(x_a)} + t(x_a)`; log-determinant
        :math:`\sum s`."""
        self._check(x)
        x_a, x_b = x[:, self.a], x[:, self.b]
        s, t = self._scale_shift(x_a)
        return self._join(x_a, x_b * torch.exp(s) + t), s.sum(dim=1)

    def inverse(self, y: Tensor) -> tuple[Tensor, Tensor]:
        r"""``(x, log|det|)``: :math:`x_b = (y_b - t(y_a)) \odot e^{-s(y_a)}`, log-determinant :math:`-\sum s`."""
        self._check(y)
        y_a, y_b = y[:, self.a], y[:, self.b]
        s, t = self._scale_shift(y_a)
        return self._join(y_a, (y_b - t) * torch.exp(-s)), -s.sum(dim=1)


class SplineCoupling(Coupling):
    r"""A coupling layer whose :math:`\tau` is a monotone rational-quadratic spline with ``bins`` bins on
    :math:`[-B, B]` and the identity outside (Durkan et al. 2019; see :mod:`.splines`). The network gives,
    for each moved coordinate, :math:`K` widths, :math:`K` heights and :math:`K - 1` interior derivatives.
    Its last layer starts at zero, which makes every bin the same size and every derivative
    exactly 1: the layer starts as the identity.
    """

    def __init__(self, dim: int, hidden: int = 128, depth: int = 2, parity: int = 0, bins: int = 8,
                 bound: float = 4.0) -> None:
        super().__init__(dim, parity)
        self.bins = positive_int(bins, "bins")
        if not bound > 0:
            raise ValueError(f"bound must be positive (the spline acts on [-bound, bound]); got {bound!r}")
        self.bound = float(bound)
        self.net = mlp(len(self.a), len(self.b) * (3 * bins - 1), hidden, depth, zero_last=True)

    def _spline(self, x_a: Tensor, x_b: Tensor, inverse: bool) -> tuple[Tensor, Tensor]:
        theta = self.net(x_a).view(len(x_a), len(self.b), 3 * self.bins - 1)
        widths, heights, derivatives = theta.split([self.bins, self.bins, self.bins - 1], dim=-1)
        y_b, logabsdet = rational_quadratic_spline(x_b, widths, heights, derivatives, self.bound, inverse)
        return y_b, logabsdet.sum(dim=1)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """``(y, log|det|)``: the kept half as it is, the other through its monotone splines conditioned on it."""
        self._check(x)
        x_a = x[:, self.a]
        y_b, logabsdet = self._spline(x_a, x[:, self.b], inverse=False)
        return self._join(x_a, y_b), logabsdet

    def inverse(self, y: Tensor) -> tuple[Tensor, Tensor]:
        """``(x, log|det|)``: each spline inverted in closed form (a quadratic per bin), the kept half as it is."""
        self._check(y)
        y_a = y[:, self.a]
        x_b, logabsdet = self._spline(y_a, y[:, self.b], inverse=True)
        return self._join(y_a, x_b), logabsdet


def realnvp(dim: int, n_layers: int = 16, hidden: int = 128, depth: int = 2) -> Flow:
    """A RealNVP flow: ActNorm, then ``n_layers`` affine couplings of alternating parity."""
    n_layers = positive_int(n_layers, "n_layers")
    layers = [ActNorm(dim)] + [AffineCoupling(dim, hidden, depth, parity=i % 2) for i in range(n_layers)]
    return Flow(Compose(layers))


def spline_flow(dim: int, n_layers: int = 16, hidden: int = 128, depth: int = 2, bins: int = 8,
                bound: float = 4.0) -> Flow:
    """A neural spline flow: ActNorm, then ``n_layers`` rational-quadratic spline couplings of alternating
    parity on :math:`[-B, B]` (ActNorm makes the data unit-variance, so ``bound`` = 4 covers it)."""
    n_layers = positive_int(n_layers, "n_layers")
    layers = [ActNorm(dim)] + [SplineCoupling(dim, hidden, depth, i % 2, bins, bound) for i in range(n_layers)]
    return Flow(Compose(layers))
