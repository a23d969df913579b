"""Small network builders shared by the models of the course."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

from ._checks import positive_int


def time_features(t: Tensor | float, like: Tensor, freqs: Tensor) -> Tensor:
    r"""The time features :math:`(t, \cos\pi k t, \sin\pi k t)_{k \le F}` of each row of ``like`` (batch, ...), shape
    (batch, 1 + 2F), in its dtype and on its device; ``freqs`` holds :math:`\pi k`, ``t`` is a number, a
    0-dimensional tensor, or one time per row."""
    t = torch.as_tensor(t, dtype=like.dtype, device=like.device)
    t = (t.expand(len(like)) if t.ndim == 0 else t.reshape(len(like)))[:, None]
    angles = t * freqs.to(like.dtype)
    return torch.cat([t, torch.cos(angles), torch.sin(angles)], dim=1)


def mlp(
    in_features: int,
    out_features: int,
    hidden: int = 128,
    depth: int = 2,
    activation: Callable[[], nn.Module] = nn.ReLU,
    zero_last: bool = False,
) -> nn.Sequential:
    """A multilayer perceptron ``in -> hidden -> ... -> hidden -> out`` with ``depth`` hidden layers.

    With ``zero_last`` the output layer starts at zero, so a flow layer built on it starts as the identity.
    """
    in_features, out_features = positive_int(in_features, "in_features"), positive_int(out_features, "out_features")
    hidden, depth = positive_int(hidden, "hidden"), positive_int(depth, "depth")
    layers: list[nn.Module] = []
    width = in_features
    for _ in range(depth):
        layers += [nn.Linear(width, hidden), activation()]
        width = hidden
    last = nn.Linear(width, out_features)
    if zero_last:
        nn.init.zeros_(last.weight)
        nn.init.zeros_(last.bias)
    return nn.Sequential(*layers, last)
