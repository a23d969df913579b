r"""A small U-Net (Ronneberger et al. 2015), the network that DDPM (Ho et al. 2020) uses for images, on flat rows.

:class:`UNet` ``(t, x)`` reads each row of ``x`` (n, c h w) as an image (c, h, w) and returns a row of the same
size, so that it plugs into :class:`~.model.Denoiser` with ``shape=(c * h * w,)`` and into every sampler, the
probability-flow ODE and its exact trace included, as the MLPs do. Inside: a 3 x 3 convolution to ``channels``,
then at each of ``levels`` + 1 resolutions a residual block (GroupNorm, SiLU, 3 x 3 convolution, plus the time's
features projected to one number per channel; then GroupNorm, SiLU, 3 x 3 convolution), a stride-2 convolution
down between resolutions (channels doubled), a residual block at the bottom, and on the way up a transposed
convolution, the skip connection of the same resolution concatenated, and a residual block; a last 3 x 3
convolution, started at zero, returns c channels.

The time enters through the features :math:`(t, \cos\pi k t, \sin\pi k t)_{k \le F}` of
:class:`~dgm_course.flows.TimeField`, passed through a small MLP. GroupNorm normalises each image on its own,
so a row's output depends on that row only (a batch normalisation would mix them, and the probability-flow
ODE's trace would be wrong).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .._checks import positive_int
from ..nets import time_features


def _groups(channels: int) -> int:
    """The largest of 8, 4, 2, 1 that divides ``channels``: GroupNorm's number of groups."""
    return next(g for g in (8, 4, 2, 1) if channels % g == 0)


class _Block(nn.Module):
    """A residual block: GroupNorm, SiLU, 3 x 3 convolution, + the time's projection per channel, GroupNorm, SiLU,
    3 x 3 convolution; a 1 x 1 convolution on the skip path when the channels change."""

    def __init__(self, c_in: int, c_out: int, c_time: int) -> None:
        super().__init__()
        self.norm1, self.conv1 = nn.GroupNorm(_groups(c_in), c_in), nn.Conv2d(c_in, c_out, 3, padding=1)
        self.time = nn.Linear(c_time, c_out)
        self.norm2, self.conv2 = nn.GroupNorm(_groups(c_out), c_out), nn.Conv2d(c_out, c_out, 3, padding=1)
        self.skip = nn.Conv2d(c_in, c_out, 1) if c_in != c_out else nn.Identity()

    def forward(self, x: Tensor, t: Tensor) -> Tensor:
        h = self.conv1(F.silu(self.norm1(x))) + self.time(t)[:, :, None, None]
        return self.skip(x) + self.conv2(F.silu(self.norm2(h)))


class UNet(nn.Module):
    r"""A U-Net :math:`\mathrm{net}(t, x)` for images of ``shape`` (c, h, w), read from and written to flat rows
    (module docstring): ``channels`` at full resolution, doubled at each of the ``levels`` halvings (h and w must
    be divisible by :math:`2^{\text{levels}}`), time features with ``freqs`` frequencies."""

    freqs: Tensor  # a buffer: the frequencies of the time features

    def __init__(self, shape: tuple[int, int, int], channels: int = 32, levels: int = 1, freqs: int = 8) -> None:
        super().__init__()
        if len(tuple(shape)) != 3 or not all(isinstance(s, int) and s > 0 for s in shape):
            raise ValueError(f"shape must be (channels, height, width) of positive integers; got {shape!r}")
        self.shape = tuple(shape)
        self.dim = math.prod(self.shape)
        c, h, w = self.shape
        channels, levels = positive_int(channels, "channels"), positive_int(levels, "levels")
        if h % 2**levels or w % 2**levels:
            raise ValueError(f"{levels} halvings need height and width divisible by {2**levels}; got {h} x {w}")
        self.register_buffer("freqs", torch.arange(1, positive_int(freqs, "freqs") + 1) * torch.pi)
        c_time = 4 * channels
        self.time = nn.Sequential(nn.Linear(1 + 2 * freqs, c_time), nn.SiLU(), nn.Linear(c_time, c_time))
        widths = [channels * 2**i for i in range(levels + 1)]
        self.stem = nn.Conv2d(c, channels, 3, padding=1)
        self.down_blocks = nn.ModuleList(_Block(widths[i], widths[i], c_time) for i in range(levels + 1))
        self.downs = nn.ModuleList(nn.Conv2d(widths[i], widths[i + 1], 3, stride=2, padding=1) for i in range(levels))
        self.middle = _Block(widths[-1], widths[-1], c_time)
        self.ups = nn.ModuleList(nn.ConvTranspose2d(widths[i + 1], widths[i], 2, stride=2) for i in range(levels))
        self.up_blocks = nn.ModuleList(_Block(2 * widths[i], widths[i], c_time) for i in range(levels))
        last = nn.Conv2d(channels, c, 3, padding=1)
        nn.init.zeros_(last.weight)
        if last.bias is not None:
            nn.init.zeros_(last.bias)
        self.out = nn.Sequential(nn.GroupNorm(_groups(channels), channels), nn.SiLU(), last)

    def forward(self, t: Tensor | float, x: Tensor) -> Tensor:
        """The output (batch, c h w) at time ``t`` (a number or one per row) for the rows ``x`` (batch, c h w), each
        read as an image (c, h, w) and written back as a row of the same size."""
        if x.ndim != 2 or x.shape[1] != self.dim:
            raise ValueError(f"x must have shape (batch, {self.dim}): images {self.shape} flattened; "
                             f"got {tuple(x.shape)}")
        emb = self.time(time_features(t, x, self.freqs))
        h = self.stem(x.reshape(len(x), *self.shape))
        skips = []
        for i, block in enumerate(self.down_blocks):
            h = block(h, emb)
            if i < len(self.downs):
                skips.append(h)
                h = self.downs[i](h)
        h = self.middle(h, emb)
        for i in reversed(range(len(self.ups))):
            h = self.up_blocks[i](torch.cat([self.ups[i](h), skips[i]], dim=1), emb)
        return self.out(h).reshape(len(x), self.dim)
