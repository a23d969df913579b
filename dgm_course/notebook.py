"""Helpers for the notebooks: seeding and gluing measured numbers into the prose.

:func:`glue` hands a value to myst-nb when the book is built, so the text quotes the number that the
code just computed; in Colab or JupyterLab without myst-nb it simply shows the value.
"""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import torch


def seed_everything(seed: int) -> torch.Generator:
    """Seed Python, NumPy and torch; return a ``torch.Generator`` seeded with ``seed`` for explicit use."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


def glue(name: str, value: Any, display: bool = False) -> None:
    """Record ``value`` under ``name`` for ``{glue:text}`name``` in the book's prose (myst-nb)."""
    if isinstance(value, torch.Tensor):
        value = value.item() if value.numel() == 1 else value.tolist()
    try:
        from myst_nb import glue as myst_glue
    except ImportError:  # outside the book build: just show it when asked
        if display:
            print(f"{name} = {value}")
        return
    myst_glue(name, value, display=display)
