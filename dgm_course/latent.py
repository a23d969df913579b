r"""The latent distribution of every generator of the course, :math:`Z \sim \mathcal N(0, I_q)`: one way to draw
it and one log-density, shared by the flows, the VAEs, the GANs and the continuous flows' samplers.

Draws are made on the random generator's device (so that a fixed CPU generator gives the same points whatever
device the model lives on), in the model's dtype, then moved to the model's device.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from ._checks import positive_int

LOG_2PI = math.log(2 * math.pi)


def draw(n: int, dim: int, like: Tensor, generator: torch.Generator | None = None) -> Tensor:
    r"""``n`` draws :math:`z \sim \mathcal N(0, I_{dim})`, shape (n, dim), with the dtype and on the device of
    ``like`` (a parameter or buffer of the model); drawn on ``generator``'s device when one is given."""
    z = torch.randn(positive_int(n, "n"), positive_int(dim, "dim"), generator=generator, dtype=like.dtype,
                    device=_device(generator, like))
    return z.to(like.device)


def uniform(n: int, dim: int, bound: float, like: Tensor, generator: torch.Generator | None = None) -> Tensor:
    r"""``n`` points uniform on the cube :math:`[-b, b]^{dim}` (:math:`b` = ``bound``), shape (n, dim), drawn like
    :func:`draw`: the starting points of Langevin chains (:mod:`dgm_course.ebm`)."""
    if not bound > 0:
        raise ValueError(f"bound must be positive; got {bound!r}")
    u = torch.rand(positive_int(n, "n"), positive_int(dim, "dim"), generator=generator, dtype=like.dtype,
                   device=_device(generator, like))
    return ((2 * u - 1) * bound).to(like.device)


def _device(generator: torch.Generator | None, like: Tensor) -> torch.device:
    return generator.device if generator is not None else like.device


def randn_like(x: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """Standard normal noise of the shape and dtype of ``x``, on its device; drawn on ``generator``'s device when one
    is given (so a CPU generator gives the same noise whatever device ``x`` is on)."""
    return torch.randn(x.shape, generator=generator, dtype=x.dtype, device=_device(generator, x)).to(x.device)


def rand_rows(x: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """One uniform draw in [0, 1) per row of ``x`` (shape (len(x),)), in its dtype and on its device, drawn like
    :func:`randn_like`."""
    return torch.rand(len(x), generator=generator, dtype=x.dtype, device=_device(generator, x)).to(x.device)


def log_prob(z: Tensor) -> Tensor:
    r""":math:`\log \mathcal N(z; 0, I) = -\tfrac12 \lVert z\rVert^2 - \tfrac d2 \log 2\pi` per example, summed over
    every non-batch dimension (:math:`d` of them)."""
    if z.ndim < 2:
        raise ValueError(f"z must have shape (batch, ...); got shape {tuple(z.shape)}")
    return -0.5 * (z * z).flatten(1).sum(dim=1) - 0.5 * z[0].numel() * LOG_2PI
