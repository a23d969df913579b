"""The checked cells of the chapters as the book build executed them, against their recorded outputs.

Every chapter's '# NBVAL_CHECK_OUTPUT' cells (its sanity cell and its exercise checks) keep their expected stdout
and result in the cell metadata (``python scripts/notebooks.py record``, at the smoke budget). nbval compares them
by executing every notebook again (``pytest notebooks --nbval-lax --nbval-current-env``); after a book build this
test compares them in the notebooks the build has just executed (``DGM_BOOK_HTML``, set by scripts/test.sh), so no
chapter runs twice. The sanity cell must name the same claims in the same order; at the smoke budget each with
its recorded verdict, at any other budget each one passing (``SKIP`` is the smoke budget's mark of a claim about
training). An exercise check must return exactly what was recorded.
"""

from __future__ import annotations

import ast
import json
import os
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
import notebooks as tool  # noqa: E402  (scripts/notebooks.py: the mark and the notebooks, as it records them)

MARK = tool.MARK
HTML = os.environ.get("DGM_BOOK_HTML")
pytestmark = pytest.mark.skipif(not HTML, reason="set DGM_BOOK_HTML to a built book (scripts/test.sh does)")
CHAPTERS = [p.stem for p in tool.NOTEBOOKS]


def _executed(stem: str) -> tuple[nbformat.NotebookNode, str]:
    """The notebook ``stem`` as the book build executed it, and the budget it ran at."""
    folder = Path(HTML).parent / "jupyter_execute" / "notebooks"
    path = folder / f"{stem}.ipynb"
    assert path.exists(), f"the book at {HTML} holds no executed {stem}; build it again with scripts/book.sh"
    glued = json.loads((folder / f"{stem}.glue.json").read_text())
    return nbformat.read(path, as_version=4), ast.literal_eval(glued["repro_budget"]["data"]["text/plain"])


def _printed(cell: nbformat.NotebookNode) -> tuple[str, str | None]:
    stdout = "".join(o.text for o in cell.outputs if o.output_type == "stream" and o.name == "stdout")
    results = [o.data["text/plain"] for o in cell.outputs if o.output_type == "execute_result"]
    return stdout, (results[0] if results else None)


def _split(line: str) -> tuple[str, str]:
    verdict, _, text = line.partition(" ")
    return verdict, text


@pytest.mark.parametrize("stem", CHAPTERS)
def test_checked_cells_print_what_was_recorded(stem):
    committed = nbformat.read(ROOT / "notebooks" / f"{stem}.ipynb", as_version=4)
    executed, budget = _executed(stem)
    checked = [i for i, c in enumerate(committed.cells) if c.cell_type == "code" and c.source.lstrip().startswith(MARK)]
    assert checked, f"{stem} has no '{MARK}' cell"
    for i in checked:
        cell, ran = committed.cells[i], executed.cells[i]
        assert ran.source == cell.source, f"{stem}: cell {i} of the built book is not the committed one; build again"
        expected = cell.metadata["nbval"]
        stdout, result = _printed(ran)
        where = f"{stem}, cell {i} (executed at the {budget} budget)"
        assert result == expected["result"], f"{where} returned {result!r}; recorded {expected['result']!r}"
        if budget == "smoke" or not expected["stdout"]:
            assert stdout == expected["stdout"], f"{where} printed\n{stdout}\nrecorded\n{expected['stdout']}"
            continue
        lines, recorded = stdout.splitlines(), expected["stdout"].splitlines()
        assert [_split(x)[1] for x in lines] == [_split(x)[1] for x in recorded], \
            f"{where} names other claims than were recorded (python scripts/notebooks.py record {stem}):\n{stdout}"
        failing = [x for x in lines if _split(x)[0] != "PASS"]
        assert not failing, f"{where}: at this budget every claim is checked, and these were not passed:\n" + \
            "\n".join(failing)
