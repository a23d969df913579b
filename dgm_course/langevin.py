r"""Langevin dynamics: sampling from a density known only through its score :math:`\nabla_x \log p(x)`.

The unadjusted Langevin algorithm (Roberts & Tweedie 1996) takes steps

.. math:: x_{k+1} = x_k + \frac{\delta}{2}\nabla_x \log p(x_k) + \sqrt{\delta}\,z_k, \qquad z_k \sim \mathcal N(0, I).

It is the Euler-Maruyama discretisation of the Langevin diffusion :math:`dx = \tfrac12\nabla\log p(x)\,dt + dw`, which
converges to :math:`p` from any start (Roberts & Tweedie 1996, Theorem 2.1). The chain itself has another stationary law
:math:`p_\delta`, and it can even be transient when :math:`\nabla\log p` grows faster than linearly (their section 3);
for smooth, log-concave :math:`p`, :math:`p_\delta \to p` as :math:`\delta \to 0` (Dalalyan 2017; Durmus & Moulines
2017). It needs no normalising constant, which is why score-based and energy-based models use it. The same function
serves both: the score may be exact, a network, or minus the gradient of an energy.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from . import latent
from ._checks import positive_int


def langevin(score: Callable[[Tensor], Tensor], x: Tensor, step: float, steps: int,
             generator: torch.Generator | None = None, trajectory: bool = False) -> Tensor:
    r"""Run ``steps`` Langevin steps of size ``step`` (:math:`\delta`) from the points ``x`` with the score
    function ``score(x)``. Returns the final points, or with ``trajectory`` the ``steps + 1`` states stacked along a
    new first dimension. Noise comes from ``generator`` (on its device) when given."""
    if not step > 0:
        raise ValueError(f"step must be a positive number; got {step!r}")
    steps = positive_int(steps, "steps")
    if not isinstance(x, Tensor) or not x.is_floating_point() or x.ndim < 2:
        raise ValueError(f"x must be a floating tensor of shape (batch, ...); got {getattr(x, 'shape', type(x))}")
    states = [x]
    for _ in range(steps):
        z = latent.randn_like(x, generator)
        x = x + 0.5 * step * score(x) + step**0.5 * z
        if not torch.isfinite(x).all():
            raise FloatingPointError(f"Langevin dynamics diverged (NaN or infinite points) with step {step}: "
                                     "take a smaller step")
        if trajectory:
            states.append(x)
    return torch.stack(states) if trajectory else x
