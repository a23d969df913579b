"""The training-budget switch every notebook reads.

One environment variable, ``DGM_BUDGET``, scales every experiment of the course:

``smoke``
    seconds per notebook; proves that every cell runs (what CI uses).
``book``
    the default; the budget the book's figures and numbers come from, sized for 2 CPU cores.
``gpu``
    larger models and data, for a machine with CUDA.

A notebook keeps its sizes in one config cell::

    cfg = budget.pick(smoke=dict(steps=20), book=dict(steps=3000), gpu=dict(steps=20000))
"""

from __future__ import annotations

import os
import warnings
from typing import TypeVar

import torch

ENV_VAR = "DGM_BUDGET"
BUDGETS = ("smoke", "book", "gpu")
DEFAULT = "book"

T = TypeVar("T")


def current() -> str:
    """Return the budget named by ``$DGM_BUDGET`` (``book`` when unset).

    Raises:
        ValueError: the variable holds a name that is not a budget.
    """
    name = os.environ.get(ENV_VAR, "").strip().lower() or DEFAULT
    if name not in BUDGETS:
        raise ValueError(
            f"{ENV_VAR}={os.environ[ENV_VAR]!r} is not a budget; use one of {', '.join(BUDGETS)} "
            f"(or leave it unset for {DEFAULT!r})."
        )
    if name == "gpu" and not torch.cuda.is_available():
        warnings.warn(
            f"{ENV_VAR}=gpu but no CUDA device is visible: the gpu-sized experiments will run on the CPU "
            "and take far longer than the book budget.",
            RuntimeWarning,
            stacklevel=2,
        )
    return name


def pick(*, smoke: T, book: T, gpu: T | None = None) -> T:
    """Return the value for the current budget; ``gpu`` falls back to ``book`` when not given."""
    name = current()
    if name == "smoke":
        return smoke
    if name == "gpu" and gpu is not None:
        return gpu
    return book
