"""The one table printer of the benchmark scripts, and their JSON results: each table is kept as typed records,
printed from them as a Markdown table (columns padded to their widest cell, so that a run's output can be pasted
into an issue as it is) and, with ``--json PATH``, written to PATH with the targets and their verdicts:

    {"script": "flows", "smoke": false, "seeds": [0, 1, 2], ...,   # what ran (Report's keyword arguments, and
                                                                   # what the script adds to Report.data)
     "tables": {"models": [{"model": "RealNVP (dgm_course)", "nll": [3.51, 3.52, 3.51], "met": true, ...}, ...]},
     "columns": {"models": {"model": "model", "nll": "held-out NLL (nats) per seed", ...}},  # key -> printed header
     "targets": [{"target": "RealNVP (dgm_course): ...", "met": true, "worst_nll": 3.52, ...}]}  # and its values

A table is a list of records, one a printed row. Values are typed: numbers as numbers (per-seed values as lists, in
the order of the seeds; a mean and its standard error as two keys, such as "nll" and "se"), names and texts as
strings, verdicts as booleans; NaN, infinities and missing values (a seed without that row, a model without a
likelihood) as null.
"""

from __future__ import annotations

import argparse
import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Column:
    """A printed column: its header and the record's key it shows. ``fmt`` is a format spec applied to the value
    (to each value of a list, joined by " / "), or a function of the value that returns the cell (of the whole
    record when ``key`` is None); ``se`` names the key of a standard error shown as "value ± se". A missing value
    (None) prints "-", a boolean "yes" or "NO"."""

    header: str
    key: str | None
    fmt: str | Callable[[Any], str] = ""
    se: str | None = None

    def cell(self, record: dict[str, Any]) -> str:
        if self.key is None:
            assert callable(self.fmt), f"column {self.header!r} has no key: its fmt must be a function of the record"
            return self.fmt(record)
        value = record.get(self.key)
        if callable(self.fmt):
            return self.fmt(value)
        return _cell(value, self.fmt, None if self.se is None else record.get(self.se))


def _cell(value: Any, fmt: str, se: Any = None) -> str:
    if isinstance(value, list):
        return " / ".join(_cell(v, fmt, None if se is None else se[i]) for i, v in enumerate(value))
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "NO"
    return format(value, fmt) + ("" if se is None else f" ± {format(se, fmt)}")


def markdown(header: list[str], rows: list[list[str]]) -> str:
    """The Markdown table of these cells, each column padded to its widest cell."""
    lines = [header] + rows
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    out = []
    for i, line in enumerate(lines):
        out.append("| " + " | ".join(cell.ljust(w) for cell, w in zip(line, widths)) + " |")
        if i == 0:
            out.append("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(out)


def plain(value: Any) -> Any:
    """``value`` as JSON can hold it: tuples as lists, NaN and infinities as None, other numbers (numpy, torch) as
    Python's."""
    if value is None or isinstance(value, (bool, str, int)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if hasattr(value, "item"):  # a numpy or torch scalar
        return plain(value.item())
    raise TypeError(f"a benchmark record holds a {type(value).__name__} ({value!r}): give it a number, a string, a "
                    "boolean, None or a list of them")


def dumps(value: Any, indent: str = "") -> str:
    """JSON text of a :func:`plain` value, one record a line: a list or dict that holds a dict, or containers of
    containers, is spread over lines; any other (a record, a list of numbers) is written on one line."""
    def items(v: Any) -> list[Any]:
        return list(v.values()) if isinstance(v, dict) else v if isinstance(v, list) else []

    def height(v: Any) -> int:
        return 1 + max(map(height, items(v)), default=0) if isinstance(v, (dict, list)) else 0

    if height(value) < 3 and not any(isinstance(x, dict) for x in items(value)):
        return json.dumps(value, allow_nan=False, ensure_ascii=False)
    inner = indent + " "
    if isinstance(value, list):
        lines = [dumps(v, inner) for v in value]
    else:
        lines = [f"{json.dumps(k, ensure_ascii=False)}: {dumps(v, inner)}" for k, v in value.items()]
    start, end = "[]" if isinstance(value, list) else "{}"
    return start + "\n" + ",\n".join(inner + line for line in lines) + "\n" + indent + end


def add_json_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", type=Path, metavar="PATH",
                        help="also write the tables and the targets' verdicts to PATH as JSON (typed records)")


class Report:
    """A run's tables and targets. ``table`` prints a table and keeps its records; ``target`` keeps a verdict;
    ``write`` writes everything as JSON (the layout in this module's docstring). Keyword arguments (seeds, smoke,
    budget, ...) are what ran, stored at the top level."""

    def __init__(self, script: str, **meta: Any) -> None:
        self.data: dict[str, Any] = {"script": script, **meta, "tables": {}, "columns": {}, "targets": []}

    def table(self, name: str, columns: list[Column], records: list[dict[str, Any]]) -> None:
        """Print ``records`` as a Markdown table of ``columns`` and keep them as table ``name``."""
        assert name not in self.data["tables"], f"two tables named {name!r}"
        self.data["tables"][name] = records
        self.data["columns"][name] = {c.key: c.header for c in columns if c.key is not None}
        print(markdown([c.header for c in columns], [[c.cell(r) for c in columns] for r in records]), flush=True)

    def target(self, target: str, met: bool, **values: Any) -> bool:
        """Keep a target's verdict with the values it was judged on; return ``met``."""
        self.data["targets"].append({"target": target, "met": bool(met), **values})
        return bool(met)

    def write(self, path: Path | None) -> None:
        """Write the report to ``path`` as JSON (nothing when ``path`` is None)."""
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            last = ("tables", "columns", "targets")  # after what ran, whatever was added when
            ordered = {**{k: v for k, v in self.data.items() if k not in last}, **{k: self.data[k] for k in last}}
            path.write_text(dumps(plain(ordered)) + "\n", encoding="utf-8")
