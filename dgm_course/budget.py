"""The two switches every notebook reads, the training budget and the course's seed, and the sizes that several
chapters and benchmarks share (:data:`VAE_SIZES`).

``DGM_BUDGET`` scales every experiment of the course:

``smoke``
    seconds per notebook; proves that every cell runs (what CI uses).
``book``
    the default; the budget the book's figures and numbers come from, sized for 2 CPU cores.
``gpu``
    larger models and data, for a machine with CUDA.

A notebook keeps its sizes in one config cell::

    cfg = budget.pick(smoke=dict(steps=20), book=dict(steps=3000), gpu=dict(steps=20000))

``DGM_SEED`` (any whole number >= 0, 0 when unset) shifts every seed the course draws from: the notebooks write
``seed(7)`` where they need seed 7, and the package's training and evaluation code does the same, so the whole
book can be rebuilt under another seed without editing anything. With ``DGM_SEED`` unset, ``seed(k) = k``; every
seed lies in :math:`[0, 2^{32})`, the range that NumPy and scikit-learn accept as well as torch.
Another seed is what another machine is in effect (other floating-point kernels, another trajectory): a claim
the book makes must hold under several (``benchmarks/claims.py`` measures that). The split of the digits into
training and held-out images and the exercise checkers' test inputs are fixed and do not follow the switch.
"""

from __future__ import annotations

import os
import warnings
from typing import Any, TypeVar

import numpy as np
import torch

ENV_VAR = "DGM_BUDGET"
SEED_VAR = "DGM_SEED"
SEED_STRIDE = 1_000_003  # seed(k) = (k + SEED_STRIDE * DGM_SEED) mod SEED_RANGE: distinct for every k < SEED_STRIDE
SEED_RANGE = 2**32  # what every consumer accepts: NumPy's RandomState and scikit-learn's random_state stop at 2^32 - 1
BUDGETS = ("smoke", "book", "gpu")
DEFAULT = "book"

T = TypeVar("T")

#: The book-budget sizes of the VAEs that several chapters and benchmarks share, kept in one place: the MLP VAE of the
#: binarized digits (its latent size is the caller's) and the convolutional VAE of Fashion-MNIST. The benchmarks train
#: them for these steps; a chapter that must stay within its 4 minutes trains them for fewer.
VAE_SIZES: dict[str, dict[str, Any]] = {
    "digits": dict(hidden=256, steps=4000, batch=128, lr=2e-3),
    "fashion-mnist": dict(latent=16, channels=32, hidden=256, steps=3000, batch=128, lr=1e-3),
}


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


def course_seed() -> int:
    """Return the whole number in ``$DGM_SEED`` (0 when unset).

    Raises:
        ValueError: the variable holds something else than a whole number >= 0.
    """
    text = os.environ.get(SEED_VAR, "").strip()
    if not text:
        return 0
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise ValueError(f"{SEED_VAR}={text!r} is not a seed; use a whole number >= 0 (or leave it unset for 0).")
    return value


def seed(k: int = 0) -> int:
    r"""Seed ``k`` of the course under the switch ``DGM_SEED``:

    .. math:: \mathrm{seed}(k) = (k + 1\,000\,003 \cdot \mathrm{DGM\_SEED}) \bmod 2^{32}

    so every seed is as written when the switch is unset, all of them move together when it is set, and each lies
    in the range NumPy and scikit-learn accept. Under one switch the seeds of distinct ``k`` are distinct
    (``k`` < 1,000,003); since 1,000,003 is odd, two switches below :math:`2^{32}` never share their seed 0.

    Raises:
        ValueError: ``k`` is not a whole number in [0, 1,000,003).
    """
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 0 <= k < SEED_STRIDE:
        raise ValueError(f"seed(k) takes a whole number 0 <= k < {SEED_STRIDE:,}; got {k!r}")
    return (int(k) + SEED_STRIDE * course_seed()) % SEED_RANGE
