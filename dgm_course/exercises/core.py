"""The mechanism behind every checked exercise."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor


@dataclass(frozen=True)
class Case:
    """One input of a check: the arguments and how to describe them to the student."""

    args: tuple[Any, ...]
    description: str


@dataclass
class Report:
    """The verdict of a checker: ``passed`` and, when not, one line per failed case."""

    name: str
    checks: int
    failures: list[str] = field(default_factory=list)
    hint: str = ""

    @property
    def passed(self) -> bool:
        """Whether every case passed (no failures)."""
        return not self.failures

    def __bool__(self) -> bool:
        return self.passed

    def __str__(self) -> str:
        if self.passed:
            return f"✅ {self.name}: all {self.checks} checks passed"
        lines = [f"❌ {self.name}: {len(self.failures)} of {self.checks} checks failed"]
        lines += [f"  - {f}" for f in self.failures]
        if self.hint:
            lines.append(f"  hint: {self.hint}")
        return "\n".join(lines)

    __repr__ = __str__


def _short(value: Any) -> str:
    if isinstance(value, Tensor):
        flat = value.detach().flatten()
        shown = ", ".join(f"{float(v):.4g}" for v in flat[:4])
        more = ", ..." if flat.numel() > 4 else ""
        return f"tensor of shape {tuple(value.shape)} [{shown}{more}]"
    if isinstance(value, float):
        return f"{value:.6g}"
    return repr(value)


def compare(
    student: Callable[..., Any],
    reference: Callable[..., Any],
    cases: Sequence[Case],
    *,
    name: str,
    atol: float = 1e-6,
    rtol: float = 1e-5,
    hint: str = "",
) -> Report:
    """Run ``student`` and ``reference`` on every case and compare the results.

    A case fails when the student's function raises, returns another type or shape, or returns values
    outside ``atol + rtol * |expected|``. The report names the input, the expected and the received value.
    """
    if not callable(student):
        return Report(name, 1, [f"expected a function, got {type(student).__name__}"], hint)
    failures = []
    for case in cases:
        expected = reference(*case.args)
        try:
            got = student(*case.args)
        except Exception as err:  # noqa: BLE001 - the student's error is the message
            failures.append(f"{case.description}: your function raised {type(err).__name__}: {err}")
            continue
        problem = _mismatch(got, expected, atol, rtol)
        if problem:
            failures.append(f"{case.description}: {problem}")
    return Report(name, len(cases), failures, hint)


def _mismatch(got: Any, expected: Any, atol: float, rtol: float) -> str:
    if isinstance(expected, Tensor):
        if not isinstance(got, Tensor):
            return f"expected a tensor, got {type(got).__name__}"
        if got.shape != expected.shape:
            return f"expected shape {tuple(expected.shape)}, got shape {tuple(got.shape)}"
        if got.dtype != expected.dtype:
            return f"expected dtype {expected.dtype}, got {got.dtype} (keep the input's dtype)"
        got_d, exp_d = got.detach().double(), expected.detach().double()
        if not torch.allclose(got_d, exp_d, atol=atol, rtol=rtol, equal_nan=True):
            worst = int(((got_d - exp_d).abs() - rtol * exp_d.abs()).flatten().argmax())
            return (
                f"expected {_short(expected)}, got {_short(got)} "
                f"(largest error at flat index {worst}: {float(got_d.flatten()[worst]):.6g} "
                f"instead of {float(exp_d.flatten()[worst]):.6g})"
            )
        return ""
    try:
        got_f, exp_f = float(got), float(expected)
    except (TypeError, ValueError):
        return f"expected a number, got {type(got).__name__}"
    if not abs(got_f - exp_f) <= atol + rtol * abs(exp_f):
        return f"expected {exp_f:.6g}, got {got_f:.6g}"
    return ""
