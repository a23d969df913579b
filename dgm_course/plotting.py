"""Figures of the course: scatter plots of samples, density heatmaps, image grids, trajectories and
animations.

Each function draws on a matplotlib ``Axes`` (a new figure when none is given) and returns it, so
figures compose: ``ax = density(model.log_prob, 4); scatter(samples, ax=ax, color="red")``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable

import matplotlib.pyplot as plt
import torch
from matplotlib.animation import FuncAnimation
from matplotlib.axes import Axes
from torch import Tensor

from ._checks import as_points, positive_int
from .metrics import grid_2d


def _axes(ax: Axes | None, size: float = 4.0) -> Axes:
    if ax is None:
        _, ax = plt.subplots(figsize=(size, size))
    return ax


def scatter(
    x: Tensor,
    ax: Axes | None = None,
    *,
    bound: float | None = None,
    s: float = 1.0,
    alpha: float = 0.5,
    color: str = "C0",
    title: str | None = None,
) -> Axes:
    """Scatter plot of 2-D points ``x`` (n, 2), on the square ``[-bound, bound]^2`` when given."""
    x = as_points(torch.as_tensor(x).detach().cpu(), dim=2)
    ax = _axes(ax)
    ax.scatter(x[:, 0].numpy(), x[:, 1].numpy(), s=s, alpha=alpha, color=color, linewidths=0)
    _frame(ax, bound, title)
    return ax


def density(
    log_prob: Callable[[Tensor], Tensor],
    bound: float,
    ax: Axes | None = None,
    *,
    n: int = 200,
    cmap: str = "viridis",
    title: str | None = None,
) -> Axes:
    r"""Heatmap of the density :math:`\exp(\log p(x))` on ``[-bound, bound]^2`` (an ``n`` x ``n`` grid).

    ``log_prob`` maps points (batch, 2) in float32 to log-densities (batch,); it is called without
    gradients, on the CPU, in chunks.
    """
    positive_int(n, "n")
    _, _, points = grid_2d(bound, n, dtype=torch.float32)
    with torch.no_grad():
        logp = torch.cat([log_prob(chunk).detach().cpu().float() for chunk in points.split(16384)])
    if logp.shape != (n * n,):
        raise ValueError(f"log_prob must return shape (batch,); got {tuple(logp.shape)} for {n * n} points")
    ax = _axes(ax)
    ax.imshow(logp.exp().reshape(n, n).numpy(), extent=(-bound, bound, -bound, bound), origin="lower", cmap=cmap)
    _frame(ax, bound, title)
    return ax


def image_grid(
    images: Tensor,
    ax: Axes | None = None,
    *,
    nrow: int | None = None,
    cmap: str = "gray",
    title: str | None = None,
    pad: int = 1,
) -> Axes:
    """Tile ``images`` (batch, channels, height, width) or (batch, height, width) into one picture.

    Values are shown as they are when in [0, 1]; any other range is scaled to [0, 1] as a whole.
    One or three channels.
    """
    images = torch.as_tensor(images).detach().cpu().float()
    if images.ndim == 3:
        images = images.unsqueeze(1)
    if images.ndim != 4 or images.shape[1] not in (1, 3) or images.shape[0] == 0:
        raise ValueError(
            "images must have shape (batch, channels, height, width) with 1 or 3 channels, "
            f"or (batch, height, width); got {tuple(images.shape)}"
        )
    if not torch.isfinite(images).all():
        raise ValueError("images hold NaN or infinite values")
    lo, hi = float(images.min()), float(images.max())
    if lo < 0 or hi > 1:
        images = (images - lo) / max(hi - lo, 1e-12)
    b, c, h, w = images.shape
    ncol = nrow if nrow is not None else math.ceil(math.sqrt(b))
    nrows = math.ceil(b / ncol)
    canvas = torch.ones(c, nrows * (h + pad) + pad, ncol * (w + pad) + pad)
    for k in range(b):
        r, q = divmod(k, ncol)
        top, left = pad + r * (h + pad), pad + q * (w + pad)
        canvas[:, top : top + h, left : left + w] = images[k]
    ax = _axes(ax, size=min(8.0, 0.6 * ncol + 1))
    if c == 1:
        ax.imshow(canvas[0].numpy(), cmap=cmap, vmin=0, vmax=1, interpolation="nearest")
    else:
        ax.imshow(canvas.permute(1, 2, 0).numpy(), interpolation="nearest")
    ax.set_axis_off()
    if title:
        ax.set_title(title)
    return ax


def _path(path: Tensor) -> Tensor:
    path = torch.as_tensor(path).detach().cpu().float()
    if path.ndim != 3 or path.shape[2] != 2 or path.shape[0] < 2:
        raise ValueError(f"a path must have shape (times >= 2, n, 2); got {tuple(path.shape)}")
    if not torch.isfinite(path).all():
        raise ValueError("the path holds NaN or infinite values")
    return path


def trajectories(
    path: Tensor,
    ax: Axes | None = None,
    *,
    bound: float | None = None,
    lines: int = 200,
    title: str | None = None,
) -> Axes:
    """Trajectories of 2-D points through time: ``path`` (times, n, 2) from an ODE solve. Draws the first
    ``lines`` paths as thin lines, the start points in grey and the end points in red."""
    path = _path(path)
    ax = _axes(ax)
    k = min(positive_int(lines, "lines"), path.shape[1])
    ax.plot(path[:, :k, 0].numpy(), path[:, :k, 1].numpy(), color="C0", lw=0.5, alpha=0.5)
    ax.scatter(path[0, :k, 0].numpy(), path[0, :k, 1].numpy(), s=3, color="0.4", zorder=3)
    ax.scatter(path[-1, :k, 0].numpy(), path[-1, :k, 1].numpy(), s=3, color="red", zorder=3)
    _frame(ax, bound, title)
    return ax


def animate(path: Tensor, *, bound: float, times: Tensor | None = None, size: float = 4.0, s: float = 1.0,
            interval: int = 80) -> FuncAnimation:
    """An animation of points moving along ``path`` (times, n, 2), one frame per time, with the time in the
    title. In Jupyter, ``IPython.display.HTML(animation_html(animate(...)))`` shows it with play controls, as
    self-contained HTML that stays in the cell's output."""
    path = _path(path)
    times = torch.linspace(0, 1, len(path)) if times is None else torch.as_tensor(times)
    fig, ax = plt.subplots(figsize=(size, size))
    dots = ax.scatter(path[0, :, 0].numpy(), path[0, :, 1].numpy(), s=s, alpha=0.5, linewidths=0)
    _frame(ax, bound, None)

    def frame(i: int) -> tuple:
        dots.set_offsets(path[i].numpy())
        ax.set_title(f"t = {float(times[i]):.2f}")
        return (dots,)

    animation = FuncAnimation(fig, frame, frames=len(path), interval=interval, blit=False)
    plt.close(fig)  # the animation keeps the figure; do not also show it as a still
    return animation


def animation_html(animation: FuncAnimation) -> str:
    """The animation as self-contained HTML with play controls (matplotlib's ``to_jshtml``), minus the
    Font Awesome stylesheet it links from a CDN, so that it needs no network: the page that shows it must provide
    those icons (Jupyter Book's theme does). Show it with ``IPython.display.HTML(animation_html(a))``."""
    html = animation.to_jshtml(default_mode="once")
    return re.sub(r"<link[^>]*font-awesome[^>]*>", "", html)


def _frame(ax: Axes, bound: float | None, title: str | None) -> None:
    if bound is not None:
        ax.set_xlim(-bound, bound)
        ax.set_ylim(-bound, bound)
    ax.set_aspect("equal")
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title)
