"""Every claim of the book under several seeds: each chapter's sanity cell (``dgm_course.notebook.check_claims``)
records the value behind each claim, its threshold and its margin; this script executes the chapters under the
seeds asked for and prints, for each claim, the value under every seed and the smallest margin.

    python benchmarks/claims.py                              # every chapter, seeds 0 1 2, and seed 3 on one thread
    python benchmarks/claims.py --chapters 12 13 --seeds 0 5 # two chapters (by number), other seeds
    python benchmarks/claims.py --report                     # only the table, from the records already made
    python benchmarks/claims.py --smoke                      # seconds: proves the script runs (the tests run it)
    python benchmarks/claims.py --report --json r.json       # the table and the target's verdict also as JSON

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

from _table import Column, Report, add_json_option  # benchmarks/_table.py, beside this script

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


def report(found: list[dict], out: Report, needed: int = 4) -> bool:
    """Print the claims table (and keep it in ``out``); return whether every checked claim held under every seed,
    each under ``needed`` runs at least (the default seed and three others)."""
    runs = sorted({(r["seed"], r["threads"]) for r in found})
    columns = [f"seed {s}" + (" (1 thread)" if t == 1 else "") for s, t in runs]
    out.data.update(runs=[dict(seed=s, threads=t) for s, t in runs])
    by_claim: dict[tuple[str, str], dict] = {}
    values: dict[tuple[str, str], dict] = defaultdict(dict)
    for r in found:
        for c in r["claims"]:
            key = (r["chapter"], c["text"])
            by_claim.setdefault(key, c)
            if c["checked"]:
                values[key][r["seed"], r["threads"]] = c
    rows, ok = [], True  # values and held: one a run (None where the run did not check the claim)
    for (chapter, text), c in by_claim.items():
        checked = [values[chapter, text].get(run) for run in runs]
        margins = [v["margin"] for v in values[chapter, text].values()]
        held = all(v["holds"] for v in values[chapter, text].values())
        ok &= held and (len(margins) >= needed or not c["checked"])
        rows.append(dict(chapter=chapter[:2], claim=text, checked=c["checked"], op=c["op"], threshold=c["threshold"],
                         values=[None if v is None else v["value"] for v in checked],
                         held=[None if v is None else v["holds"] for v in checked],
                         min_margin=min(margins) if margins else None, seeds=len(margins), holds=held))
    seen: dict[tuple[str, str], dict] = defaultdict(dict)
    for r in found:
        for text, value in r.get("observed", {}).items():
            seen[r["chapter"], text][r["seed"], r["threads"]] = value
    for (chapter, text), by_run in seen.items():
        signs = {math.copysign(1, v) for v in by_run.values()}
        rows.append(dict(chapter=chapter[:2], claim=f"{text} (observed, not claimed)", checked=False, op=None,
                         threshold=None, values=[by_run.get(run) for run in runs], held=[None] * len(runs),
                         min_margin=None, sign_varies=len(signs) > 1, seeds=len(by_run), holds=None))

    def run_column(i: int) -> Column:
        def cell(r: dict) -> str:
            value, held = r["values"][i], r["held"][i]
            return "-" if value is None else f"{value:.4g}" + ("" if held is not False else " FAIL")
        return Column(columns[i], None, cell)

    out.table("claims", [
        Column("ch.", "chapter"), Column("claim", "claim"),
        Column("needs", None, lambda r: "-" if r["op"] is None else f"{r['op']} {r['threshold']:.4g}"),
        *[run_column(i) for i in range(len(runs))],
        Column("min margin", None, lambda r: "sign varies" if r.get("sign_varies") else
               "-" if r["min_margin"] is None else f"{r['min_margin']:.3g}"),
        Column("seeds", "seeds"), Column("holds", "holds"),
    ], rows)
    print(f"\ntarget: every claim holds under at least {needed} runs (the default seed and three others, one on a "
          f"single thread) -> {'met' if ok else 'NOT MET'}")
    failing = [f"{r['chapter']}: {r['claim']}" for r in rows if r["holds"] is False]
    too_few = [f"{r['chapter']}: {r['claim']}" for r in rows if r["checked"] and r["seeds"] < needed]
    return out.target(f"every claim holds under at least {needed} runs (the default seed and three others, one on a "
                      "single thread)", ok, failing=failing, too_few_runs=too_few)


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
    add_json_option(parser)
    args = parser.parse_args()
    budget = "smoke" if args.smoke else "book"
    out = Report("claims", smoke=args.smoke, budget=budget, seeds=args.seeds, single_thread=args.single_thread)
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
        out.write(args.json)
        return 1
    ok = report(found, out, needed=args.needed)
    for failure in failures:
        print(f"FAILED {failure}")
    out.data.update(failed_runs=failures)
    out.write(args.json)
    return 0 if ok and not failures else 1


if __name__ == "__main__":
    sys.exit(main())
