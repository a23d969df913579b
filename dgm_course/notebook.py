"""Helpers for the notebooks: seeding, gluing measured numbers into the prose, and checking the claims.

:func:`glue` hands a value to myst-nb when the book is built, so the text quotes the number that the
code just computed; in Colab or JupyterLab without myst-nb it simply shows the value.

:func:`check_claims` is every chapter's sanity cell: each :class:`Claim` the prose makes about a run is a
measured value, a comparison and a threshold. It prints one line a claim, records the values and their
margins when ``$DGM_CLAIMS_DIR`` names a folder (``benchmarks/claims.py`` gathers them over seeds), and
stops the build with a message that says what failed, under which seed, and how to rebuild that chapter. It also
glues what the chapter's "Reproducing this chapter" note quotes: ``repro_budget``, ``repro_seed``,
``repro_threads``, ``repro_seconds`` (since :func:`seed_everything`), ``repro_claims`` and ``repro_command``.
"""

from __future__ import annotations

import json
import math
import os
import random
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal, Mapping, Sequence

import numpy as np
import torch

from . import budget

Comparison = Literal["<", "<=", ">", ">="]
CLAIMS_VAR = "DGM_CLAIMS_DIR"
_started: float | None = None  # when the chapter seeded itself: its first cell after the imports


def seed_everything(k: int = 0) -> torch.Generator:
    """Seed Python, NumPy and torch with :func:`budget.seed` ``(k)``; return a ``torch.Generator`` seeded the same."""
    global _started
    _started = time.perf_counter()
    s = budget.seed(k)
    random.seed(s)
    np.random.seed(s % 2**32)
    torch.manual_seed(s)
    return torch.Generator().manual_seed(s)


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


@dataclass(frozen=True)
class Claim:
    """A sentence of the book about a run: ``value <op> threshold`` must hold.

    ``value`` is the worst case over everything the sentence covers (the largest error, the smallest gain), so
    the margin says how close the sentence came to being false. A purely logical fact (a shape, an exact
    count) is ``Claim.fact(text, holds)``. ``book_only`` marks a claim about training that the ``smoke``
    budget's few steps cannot show; it is checked at every other budget and reported as skipped at ``smoke``.
    """

    text: str
    value: float
    op: Comparison
    threshold: float
    book_only: bool = False

    def __post_init__(self) -> None:
        if self.op not in ("<", "<=", ">", ">="):
            raise ValueError(f"claim {self.text!r}: op must be one of <, <=, >, >=; got {self.op!r}")
        object.__setattr__(self, "value", float(self.value))
        object.__setattr__(self, "threshold", float(self.threshold))

    @classmethod
    def fact(cls, text: str, holds: bool, book_only: bool = False) -> "Claim":
        """A claim with no margin: 1 when it holds, 0 when not (``value >= 1``)."""
        return cls(text, 1.0 if holds else 0.0, ">=", 1.0, book_only)

    @property
    def checked(self) -> bool:
        """Whether the claim is checked at the current budget: always, except a ``book_only`` claim at ``smoke``."""
        return not (self.book_only and budget.current() == "smoke")

    @property
    def margin(self) -> float:
        """How far ``value`` is on the right side of ``threshold`` (negative: the claim fails)."""
        if math.isnan(self.value):
            return -math.inf
        return self.threshold - self.value if self.op in ("<", "<=") else self.value - self.threshold

    @property
    def holds(self) -> bool:
        """Whether the claim holds: a positive margin, or a zero margin under ``<=`` or ``>=``."""
        m = self.margin
        return m > 0 or (m == 0 and self.op in ("<=", ">="))


def record_name(chapter: str, budget_name: str, seed: int, threads: int) -> str:
    """The file name of one run's claims record in ``$DGM_CLAIMS_DIR``."""
    return f"{chapter}.{budget_name}.seed{seed}.t{threads}.json"


class ClaimFailed(AssertionError):
    """A claim the chapter's prose makes did not hold in this run."""


def check_claims(chapter: str, claims: Sequence[Claim], observed: Mapping[str, float] | None = None) -> None:
    """Print ``PASS``/``FAIL``/``SKIP`` and each claim; record them (``$DGM_CLAIMS_DIR``); raise if one fails.

    ``observed`` holds outcomes the text reports from the glued values without asserting them (which of two
    close models wins, say): they are recorded beside the claims, so that the claims table shows how they move
    from seed to seed, and never fail the build.

    Raises:
        ClaimFailed: naming the chapter, each failed claim with its value and threshold, the seed and budget,
            and the command that rebuilds this chapter alone.
    """
    name, seed = budget.current(), budget.course_seed()
    rerun = f"DGM_SEED={seed} DGM_BUDGET={name} python scripts/notebooks.py run {chapter}"
    for key, value in (("budget", name), ("seed", seed), ("threads", torch.get_num_threads()),
                       ("seconds", "-" if _started is None else f"{time.perf_counter() - _started:.0f}"),
                       ("claims", sum(c.checked for c in claims)), ("command", rerun)):
        glue(f"repro_{key}", value)
    for c in claims:
        print(("PASS" if c.holds else "FAIL") if c.checked else "SKIP", c.text)
    folder = os.environ.get(CLAIMS_VAR)
    if folder:
        record = {"chapter": chapter, "seed": seed, "budget": name, "threads": torch.get_num_threads(),
                  "claims": [{**asdict(c), "checked": c.checked, "holds": c.holds, "margin": c.margin}
                             for c in claims],
                  "observed": {k: float(v) for k, v in (observed or {}).items()}}
        path = Path(folder) / record_name(chapter, name, seed, torch.get_num_threads())
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(record, indent=1))
    failed = [c for c in claims if c.checked and not c.holds]
    if failed:
        lines = "\n".join(f"  - {c.text}: measured {c.value:.6g}, needs {c.op} {c.threshold:.6g}" for c in failed)
        raise ClaimFailed(
            f"chapter {chapter}: {len(failed)} claim(s) of the text did not hold in this run "
            f"(DGM_SEED={seed}, DGM_BUDGET={name}):\n{lines}\n"
            f"Rebuild this chapter alone with: {rerun}\n"
            "A claim that fails under some seed is not one the book can make: make the method deliver it, or "
            "state the outcome from the glued values (benchmarks/claims.py measures each claim over seeds)."
        )
