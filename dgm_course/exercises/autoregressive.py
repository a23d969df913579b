"""Checkers for the exercises of the autoregressive chapter."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor
from torch.nn import functional as F

from .core import Report


def check_made_masks(made_masks: Callable[[Tensor, list[int], torch.Generator], list[Tensor]]) -> Report:
    r"""Check a student's ``made_masks(order, hidden, generator)``, which returns one 0/1 mask per layer (shapes
    (hidden[0], d), ..., (d, hidden[-1])) for the input ``order`` (``order[j]`` = position of input :math:`j`). Any
    valid choice of degrees passes: the checker builds an MLP with random weights and the student's masks, and
    checks with autograd that output :math:`j` depends on no input at or after :math:`j`'s position in the order
    (the autoregressive property), and that it depends on most of the inputs before it (the masks do not cut more
    than they must)."""
    report = Report("made_masks", 0, hint="give each unit a degree: inputs by their position in the order (1..d), "
                    "hidden units at least the smallest degree below; keep a weight when the degree does not decrease "
                    "(hidden layers) or strictly increases (into the outputs)")
    gen = torch.Generator().manual_seed(0)
    for d, hidden in ((5, [16]), (6, [32, 32]), (8, [64, 48])):
        for order in (torch.arange(d), torch.randperm(d, generator=gen)):
            report.checks += 1
            case = f"d = {d}, hidden = {hidden}, order {order.tolist()}"
            try:
                masks = made_masks(order.clone(), list(hidden), torch.Generator().manual_seed(1))
            except Exception as err:  # noqa: BLE001 - the student's error is the message
                report.failures.append(f"{case}: your function raised {type(err).__name__}: {err}")
                continue
            shapes = [(b, a) for a, b in zip([d] + hidden, hidden + [d])]
            got = [tuple(m.shape) for m in masks] if isinstance(masks, (list, tuple)) else None
            if got != shapes:
                report.failures.append(f"{case}: expected masks of shapes {shapes}, got {got}")
                continue
            weights = [torch.randn(s, generator=gen, dtype=torch.float64) * m.double() for s, m in zip(shapes, masks)]

            def net(x: Tensor, weights: list[Tensor] = weights) -> Tensor:
                for w in weights[:-1]:
                    x = F.softplus(x @ w.T)
                return x @ weights[-1].T

            jac = torch.autograd.functional.jacobian(net, torch.rand(d, dtype=torch.float64))
            allowed = order[:, None] > order[None, :]
            if (jac[~allowed] != 0).any():
                j, i = (jac * ~allowed != 0).nonzero()[0].tolist()
                report.failures.append(f"{case}: output {j} (position {int(order[j])}) depends on input {i} "
                                       f"(position {int(order[i])}), which does not come before it")
            elif allowed.any() and (jac[allowed] != 0).float().mean() < 0.5:
                report.failures.append(f"{case}: outputs see only {float((jac[allowed] != 0).float().mean()):.0%} "
                                       "of the inputs they may see")
    return report
