"""The one table printer of the benchmark scripts: a Markdown table, columns padded to their widest cell,
so that a run's output can be pasted into an issue as it is."""

from __future__ import annotations


def print_table(header: list[str], rows: list[list[str]]) -> None:
    lines = [header] + rows
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    for i, line in enumerate(lines):
        print("| " + " | ".join(cell.ljust(w) for cell, w in zip(line, widths)) + " |")
        if i == 0:
            print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
