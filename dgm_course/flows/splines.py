r"""The monotone rational-quadratic spline of Durkan et al. (2019), after Gregory & Delbourgo (1982).

On :math:`[-B, B]` the spline has :math:`K` bins with knots :math:`(x^{(k)}, y^{(k)})_{k=0}^K`,
:math:`x^{(0)} = y^{(0)} = -B`, :math:`x^{(K)} = y^{(K)} = B`, and positive derivatives
:math:`\delta^{(k)}` at the knots (:math:`\delta^{(0)} = \delta^{(K)} = 1`, so the spline joins the
identity outside :math:`[-B, B]` smoothly). In bin :math:`k`, with width :math:`w = x^{(k+1)} - x^{(k)}`,
height :math:`h`, slope :math:`s = h / w` and :math:`\xi = (x - x^{(k)}) / w \in [0, 1]`,

.. math::
    y = y^{(k)} + h\,\frac{s\xi^2 + \delta^{(k)}\xi(1-\xi)}{s + (\delta^{(k+1)} + \delta^{(k)} - 2s)\,\xi(1-\xi)},

.. math::
    \frac{dy}{dx} = \frac{s^2\left[\delta^{(k+1)}\xi^2 + 2s\,\xi(1-\xi) + \delta^{(k)}(1-\xi)^2\right]}
    {\left[s + (\delta^{(k+1)} + \delta^{(k)} - 2s)\,\xi(1-\xi)\right]^2} > 0.

The map is strictly increasing, and its inverse in a bin is the root in :math:`[0, 1]` of a quadratic
:math:`a\xi^2 + b\xi + c = 0`, taken in the form :math:`\xi = 2c / (-b - \sqrt{b^2 - 4ac})`, which is
stable when :math:`a \approx 0`.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

MIN_BIN = 1e-3
MIN_DERIVATIVE = 1e-3
# softplus(0 + _UNIT) = 1 - MIN_DERIVATIVE: zero parameters give unit derivatives, i.e. the identity map
_UNIT = math.log(math.expm1(1 - MIN_DERIVATIVE))


def _knots(raw: Tensor, bound: float) -> tuple[Tensor, Tensor]:
    """Bin sizes (softmax, at least ``MIN_BIN`` of the interval) and knot positions from ``-B`` to ``B``."""
    k = raw.shape[-1]
    size = MIN_BIN + (1 - MIN_BIN * k) * torch.softmax(raw, dim=-1)
    inner = torch.cumsum(size, dim=-1)[..., :-1]  # the K - 1 interior knots, in (0, 1)
    knots = F.pad(F.pad(inner, (1, 0), value=0.0), (0, 1), value=1.0)  # ends exactly at 0 and 1
    knots = bound * (2 * knots - 1)
    return knots[..., 1:] - knots[..., :-1], knots


def rational_quadratic_spline(
    x: Tensor,
    widths: Tensor,
    heights: Tensor,
    derivatives: Tensor,
    bound: float,
    inverse: bool = False,
) -> tuple[Tensor, Tensor]:
    r"""Apply the spline (or its inverse) elementwise; returns ``(y, logabsdet)`` of the shape of ``x``.

    Args:
        x: points, any shape ``S``.
        widths, heights: unnormalised bin widths and heights, shape ``S + (K,)`` (a softmax turns them
            into a partition of :math:`[-B, B]`).
        derivatives: unnormalised interior derivatives, shape ``S + (K - 1,)`` (a shifted softplus makes
            them positive, and 1 at zero: all-zero parameters give the identity map).
        bound: :math:`B`; outside :math:`[-B, B]` the map is the identity.
        inverse: apply :math:`f^{-1}` instead of :math:`f`; ``logabsdet`` is then that of the inverse.
    """
    w, x_knots = _knots(widths, bound)
    h, y_knots = _knots(heights, bound)
    one = derivatives.new_ones(derivatives.shape[:-1] + (1,))
    d = torch.cat([one, MIN_DERIVATIVE + F.softplus(derivatives + _UNIT), one], dim=-1)

    inside = (x >= -bound) & (x <= bound)
    u = x.clamp(-bound, bound)  # keep the unused branch finite, so its zero gradient stays zero
    knots = y_knots if inverse else x_knots
    k = torch.searchsorted(knots[..., 1:-1].contiguous(), u[..., None].contiguous()).clamp(max=w.shape[-1] - 1)

    def at(t: Tensor) -> Tensor:
        return t.gather(-1, k)[..., 0]

    xk, yk, wk, hk, dk, dk1 = at(x_knots), at(y_knots), at(w), at(h), at(d), at(d[..., 1:])
    s = hk / wk
    if inverse:
        dy = u - yk
        a = hk * (s - dk) + dy * (dk1 + dk - 2 * s)
        b = hk * dk - dy * (dk1 + dk - 2 * s)
        c = -s * dy
        xi = (2 * c) / (-b - torch.sqrt((b * b - 4 * a * c).clamp_min(0)))
        out = xk + xi * wk
    else:
        xi = (u - xk) / wk
        out = yk + hk * (s * xi**2 + dk * xi * (1 - xi)) / (s + (dk1 + dk - 2 * s) * xi * (1 - xi))
    xi_1mxi = xi * (1 - xi)
    denominator = s + (dk1 + dk - 2 * s) * xi_1mxi
    numerator = s**2 * (dk1 * xi**2 + 2 * s * xi_1mxi + dk * (1 - xi) ** 2)
    logabsdet = torch.log(numerator) - 2 * torch.log(denominator)
    if inverse:
        logabsdet = -logabsdet
    return torch.where(inside, out, x), torch.where(inside, logabsdet, torch.zeros_like(logabsdet))
