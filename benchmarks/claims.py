"""Every claim of the book under several seeds: each chapter's sanity cell (``dgm_course.notebook.check_claims``)
records the value behind each claim, its threshold and its margin; this script executes the chapters under the
seeds asked for and prints, for each claim, the value under every seed and the smallest margin.

    python benchmarks/claims.py                              # every chapter, seeds 0 1 2, and seed 3 on one thread
    python benchmarks/claims.py --chapters 12 13 --seeds 0 5 # two chapters (by number), other seeds
    python benchmarks/claims.py --report                     # only the table, from the records already made
    python benchmarks/claims.py --smoke                      # seconds: proves the script runs (the tests run it)

A run already recorded (same chapter, budget, seed and thread count) is not repeated; ``--again`` repeats it.
The book build records its own runs (``scripts/book.sh`` writes ``_build/<budget>[-seed<k>]/claims/``); those
are read too. Target (issue 17): every claim holds under the default seed and at least three others, one of
them with a single thread; a claim that fails under any seed is reported as failing, with its seed.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

from dgm_course.notebook import record_name

from _table import print_table  # benchmarks/_table.py, beside this script

ROOT = Path(__file__).resolve().parent.parent
CHAPTERS = sorted(p.stem for p in (ROOT / "notebooks").glob("*.ipynb"))


def chapter_names(prefixes: list[str] | None) -> list[str]:
    if not prefixes:
        return CHAPTERS
    names = []
    for prefix in prefixes:
        match = [c for c in CHAPTERS if c.startswith(prefix)]
        if len(match) != 1:
            sys.exit(f"--chapters {prefix!r} names {len(match)} chapters; choose from: {', '.join(CHAPTERS)}")
        names += match
    return names


def stamp(chapter: str) -> str:
    """A hash of the package's code and of the chapter's code cells: a record made by other code is not reused."""
    import nbformat

    digest = hashlib.sha256()
    for path in sorted((ROOT / "dgm_course").rglob("*.py")):
        digest.update(path.read_bytes())
    nb = nbformat.read(ROOT / "notebooks" / f"{chapter}.ipynb", as_version=4)
    digest.update("".join(c.source for c in nb.cells if c.cell_type == "code").encode())
    return digest.hexdigest()[:16]


def execute(chapter: str, budget: str, seed: int, threads: int | None, folder: Path) -> int:
    """Run one chapter in a fresh kernel (scripts/notebooks.py run) with its claims recorded in ``folder``; return
    the exit status (1: a claim failed or the chapter stopped before its sanity cell)."""
    env = dict(os.environ, DGM_BUDGET=budget, DGM_SEED=str(seed), DGM_CLAIMS_DIR=str(folder), DGM_PROGRESS="0")
    if threads is not None:
        env.update(OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    return subprocess.run([sys.executable, str(ROOT / "scripts" / "notebooks.py"), "run", chapter], env=env,
                          check=False).returncode


def records(folders: list[Path], budget: str) -> list[dict]:
    found = []
    for folder in folders:
        for path in sorted(folder.glob(f"*.{budget}.seed*.json")):
            found.append(json.loads(path.read_text()))
    return found


def report(found: list[dict], needed: int = 4) -> bool:
    """Print the claims table; return whether every checked claim held under every seed, each under ``needed``
    runs at least (the default seed and three others)."""
    runs = sorted({(r["seed"], r["threads"]) for r in found})
    columns = [f"seed {s}" + (" (1 thread)" if t == 1 else "") for s, t in runs]
    by_claim: dict[tuple[str, str], dict] = {}
    values: dict[tuple[str, str], dict] = defaultdict(dict)
    for r in found:
        for c in r["claims"]:
            key = (r["chapter"], c["text"])
            by_claim.setdefault(key, c)
            if c["checked"]:
                values[key][r["seed"], r["threads"]] = c
    rows, ok = [], True
    for (chapter, text), c in by_claim.items():
        cells = []
        for run in runs:
            v = values[chapter, text].get(run)
            cells.append("-" if v is None else f"{v['value']:.4g}" + ("" if v["holds"] else " FAIL"))
        margins = [v["margin"] for v in values[chapter, text].values()]
        held = all(v["holds"] for v in values[chapter, text].values())
        ok &= held and (len(margins) >= needed or not c["checked"])
        rows.append([chapter[:2], text, f"{c['op']} {c['threshold']:.4g}", *cells,
                     f"{min(margins):.3g}" if margins else "-", str(len(margins)), "yes" if held else "NO"])
    seen: dict[tuple[str, str], dict] = defaultdict(dict)
    for r in found:
        for text, value in r.get("observed", {}).items():
            seen[r["chapter"], text][r["seed"], r["threads"]] = value
    for (chapter, text), by_run in seen.items():
        cells = [f"{by_run[run]:.4g}" if run in by_run else "-" for run in runs]
        signs = {math.copysign(1, v) for v in by_run.values()}
        rows.append([chapter[:2], f"{text} (observed, not claimed)", "-", *cells,
                     "sign varies" if len(signs) > 1 else "-", str(len(by_run)), "-"])
    print_table(["ch.", "claim", "needs", *columns, "min margin", "seeds", "holds"], rows)
    print(f"\ntarget: every claim holds under at least {needed} runs (the default seed and three others, one on a "
          f"single thread) -> {'met' if ok else 'NOT MET'}")
    return ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--chapters", nargs="*", help="chapter numbers or names (default: all)")
    parser.add_argument("--seeds", nargs="*", type=int, default=[0, 1, 2], help="seeds run with all threads")
    parser.add_argument("--single-thread", nargs="*", type=int, default=[3], help="seeds run on one thread")
    parser.add_argument("--smoke", action="store_true", help="the smoke budget (claims about training are skipped)")
    parser.add_argument("--report", action="store_true", help="print the table of the runs recorded, run nothing")
    parser.add_argument("--again", action="store_true", help="repeat runs that are already recorded")
    parser.add_argument("--out", type=Path, default=ROOT / "_build" / "claims", help="where the records go")
    parser.add_argument("--needed", type=int, default=4, help="runs each claim must hold under (default 4)")
    args = parser.parse_args()
    budget = "smoke" if args.smoke else "book"
    chapters = chapter_names(args.chapters)
    failures: list[str] = []
    if not args.report:
        import torch

        cores = torch.get_num_threads()
        plan = [(s, None) for s in args.seeds] + [(s, 1) for s in args.single_thread]
        stamps_file = args.out / "stamps.json"
        stamps = json.loads(stamps_file.read_text()) if stamps_file.exists() else {}
        for chapter in chapters:
            current = stamp(chapter)
            for seed, threads in plan:
                name = record_name(chapter, budget, seed, threads or cores)
                done = args.out / name
                if done.exists() and stamps.get(name) == current and not args.again:
                    continue
                done.unlink(missing_ok=True)
                start = time.perf_counter()
                status = execute(chapter, budget, seed, threads, args.out)
                print(f"[claims] {chapter} seed {seed} threads {threads or cores}: {time.perf_counter() - start:.0f} s",
                      flush=True)
                if not done.exists():
                    failures.append(f"{chapter} seed {seed}: stopped before its sanity cell (exit {status})")
                    continue
                stamps[name] = current
                args.out.mkdir(parents=True, exist_ok=True)
                stamps_file.write_text(json.dumps(stamps, indent=1))
    folders = [args.out] + sorted((ROOT / "_build").glob(f"{budget}*/claims"))
    found = [r for r in records(folders, budget) if r["chapter"] in chapters]
    if not found:
        print("no claims recorded yet: run without --report")
        return 1
    ok = report(found, needed=args.needed)
    for failure in failures:
        print(f"FAILED {failure}")
    return 0 if ok and not failures else 1


if __name__ == "__main__":
    sys.exit(main())
