"""nbval on stripped notebooks: give each '# NBVAL_CHECK_OUTPUT' cell its expected output.

The committed notebooks hold no outputs, and nbval skips the comparison for a cell that was never run.
The expected stdout of a checked cell is kept in its metadata (``nbval.stdout`` and ``nbval.result``, written by
``python scripts/notebooks.py record``); here it becomes the reference nbval compares against, so a
checked cell that prints anything else fails. What ``dgm_course.notebook.glue`` hands to myst-nb (the
``application/papermill.record/...`` outputs a checked cell emits for the book's reproducibility note) is not
printed text, so nbval leaves it out of the comparison.
"""

import nbformat
import pytest

MARK = "# NBVAL_CHECK_OUTPUT"
GLUED = tuple(f"application/papermill.record/{mime}"
              for mime in ("text/plain", "text/html", "text/markdown", "image/png"))


def pytest_collection_modifyitems(items):
    for item in items:
        cell = getattr(item, "cell", None)
        if cell is None or not cell.source.lstrip().startswith(MARK):
            continue
        expected = cell.get("metadata", {}).get("nbval")
        if expected is None:
            raise pytest.UsageError(
                f"{item.nodeid}: a '{MARK}' cell has no expected output; run: python scripts/notebooks.py record"
            )
        outputs = []
        if expected["stdout"]:
            outputs.append(nbformat.v4.new_output("stream", name="stdout", text=expected["stdout"]))
        if expected["result"] is not None:
            outputs.append(nbformat.v4.new_output("execute_result", data={"text/plain": expected["result"]}))
        cell.outputs = outputs
        cell.execution_count = 1
        if not set(GLUED) <= set(item.parent.skip_compare):
            item.parent.skip_compare = (*item.parent.skip_compare, *GLUED)
