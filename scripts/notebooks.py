"""Keep the notebooks in their committed form.

    python scripts/notebooks.py fix      # strip outputs, set the kernel, write the install cell
    python scripts/notebooks.py record [NAME ...]  # also run each notebook, or the named ones (smoke budget),
                                         # and store the expected
                                         # stdout of its '# NBVAL_CHECK_OUTPUT' cells in the cell metadata
    python scripts/notebooks.py check    # exit 1 if any notebook is not in committed form
    python scripts/notebooks.py run 12_super_resolution [...]   # execute chapters at $DGM_BUDGET and $DGM_SEED,
                                         # print what they print and their time; exit 1 if one fails

The first code cell of every notebook (after the title) installs dgm_course in Colab; it is generated from the
repository address in _config.yml, the one place that address is kept. Expected outputs live in cell metadata
(``nbval.stdout`` and ``nbval.result``), not in outputs, so the notebooks stay stripped; notebooks/conftest.py hands
them to nbval.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import nbformat
import yaml

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
MARK = "# NBVAL_CHECK_OUTPUT"
KERNELSPEC = {"display_name": "Python 3", "language": "python", "name": "python3"}


def repository_url() -> str:
    return yaml.safe_load((ROOT / "_config.yml").read_text())["repository"]["url"]


INSTALL_HEADER = "# Colab (or any environment without the course package)"


def install_cell_source() -> str:
    return (
        f"{INSTALL_HEADER}: install dgm_course from its repository.\n"
        "try:\n"
        "    import dgm_course\n"
        "except ImportError:\n"
        f'    %pip install --quiet "dgm-course @ git+{repository_url()}"\n'
        "    import dgm_course"
    )


def fixed(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    nb.metadata = {"kernelspec": KERNELSPEC, "language_info": {"name": "python"}}
    while nb.cells and nb.cells[0].cell_type == "code" and nb.cells[0].source.startswith(INSTALL_HEADER):
        del nb.cells[0]  # the title comes first; the install cell follows it, once
    code = [c for c in nb.cells if c.cell_type == "code"]
    code[0].source = install_cell_source()
    code[0].metadata["tags"] = ["hide-cell"]
    for cell in code:
        cell.outputs = []
        cell.execution_count = None
    return nb


def record(path: Path, nb: nbformat.NotebookNode) -> None:
    from nbclient import NotebookClient

    os.environ.update(DGM_BUDGET="smoke", DGM_PROGRESS="0")  # the kernel inherits these
    run = nbformat.reads(nbformat.writes(nb), as_version=4)
    NotebookClient(run, timeout=1800, kernel_name="python3",
                   resources={"metadata": {"path": str(path.parent)}}).execute()
    for cell, ran in zip(nb.cells, run.cells):
        if cell.cell_type == "code" and cell.source.lstrip().startswith(MARK):
            stdout = "".join(o.text for o in ran.outputs if o.output_type == "stream" and o.name == "stdout")
            result = [o.data["text/plain"] for o in ran.outputs if o.output_type == "execute_result"]
            cell.metadata["nbval"] = {"stdout": stdout, "result": result[0] if result else None}
            text = stdout + (result[0] if result else "")
            print(f"{path.name}: recorded {text.count(chr(10))} lines of a checked cell")


def slowest_cells(nb: nbformat.NotebookNode, count: int = 5) -> list[tuple[float, int, str]]:
    """The `count` code cells that took longest (nbclient's timing metadata), with their first line of code."""
    from datetime import datetime

    timed = []
    for index, cell in enumerate(nb.cells):
        stamps = cell.get("metadata", {}).get("execution", {})
        if cell.cell_type == "code" and "iopub.execute_input" in stamps and "shell.execute_reply" in stamps:
            begin, end = (datetime.fromisoformat(stamps[k].replace("Z", "+00:00"))
                          for k in ("iopub.execute_input", "shell.execute_reply"))
            lines = [ln for ln in cell.source.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
            timed.append(((end - begin).total_seconds(), index, (lines[0] if lines else "")[:70]))
    return sorted(timed, reverse=True)[:count]


def run(names: list[str]) -> int:
    """Execute each named chapter as the book does (budget and seed from the environment); report and time it.
    With ``DGM_KEEP_RUNS`` set to a folder, the executed notebooks are saved there (outputs and glued values), one
    file per chapter, budget and seed."""
    import time

    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    os.environ.setdefault("DGM_PROGRESS", "0")
    failed = []
    for name in names:
        path = ROOT / "notebooks" / (Path(name).stem + ".ipynb")
        if not path.exists():
            sys.exit(f"no chapter {name!r}; choose one of: {', '.join(p.stem for p in NOTEBOOKS)}")
        nb = nbformat.read(path, as_version=4)
        print(f"[run] {path.stem} (DGM_BUDGET={os.environ.get('DGM_BUDGET', 'book')}, "
              f"DGM_SEED={os.environ.get('DGM_SEED', '0')})", flush=True)
        start = time.perf_counter()
        try:
            NotebookClient(nb, timeout=1800, kernel_name="python3",
                           resources={"metadata": {"path": str(path.parent)}}).execute()
        except CellExecutionError as err:
            print(str(err).strip().splitlines()[-1] if "ClaimFailed" not in str(err) else
                  str(err)[str(err).index("ClaimFailed"):], flush=True)
            failed.append(path.stem)
        if os.environ.get("DGM_KEEP_RUNS"):
            keep = Path(os.environ["DGM_KEEP_RUNS"])
            keep.mkdir(parents=True, exist_ok=True)
            nbformat.write(nb, keep / f"{path.stem}.{os.environ.get('DGM_BUDGET', 'book')}.seed"
                                      f"{os.environ.get('DGM_SEED', '0')}.ipynb")
        for cell in nb.cells:
            if cell.cell_type == "code" and cell.source.lstrip().startswith(MARK):
                print("".join(o.get("text", "") for o in cell.get("outputs", []) if o.output_type == "stream"), end="")
        print(f"[run] {path.stem}: {'FAILED' if path.stem in failed else 'ok'} in {time.perf_counter() - start:.0f} s",
              flush=True)
        for seconds, index, line in slowest_cells(nb):
            print(f"[run]   {seconds:6.1f} s  cell {index:2d}  {line}", flush=True)
    return 1 if failed else 0


def main(command: str, names: list[str] | None = None) -> int:
    bad = []
    for path in NOTEBOOKS:
        original = path.read_text()
        nb = fixed(nbformat.reads(original, as_version=4))
        if command == "record" and (not names or path.stem in names):
            record(path, nb)
        text = nbformat.writes(nb, version=4) + "\n"
        if command == "check":
            if text != original:
                bad.append(path.name)
        elif text != original:
            path.write_text(text)
            print(f"{path.name}: rewritten")
    if bad:
        print("not in committed form (run: python scripts/notebooks.py fix):", ", ".join(bad))
        return 1
    return 0


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "run":
        sys.exit(run(sys.argv[2:]))
    if len(sys.argv) > 2 and sys.argv[1] == "record":
        sys.exit(main("record", [Path(name).stem for name in sys.argv[2:]]))
    if len(sys.argv) != 2 or sys.argv[1] not in ("fix", "record", "check"):
        sys.exit(__doc__)
    sys.exit(main(sys.argv[1]))
