"""Benchmark of the energy distance: ours (dgm_course.metrics.energy_distance) against dcor's and against a
plain scipy computation (three full distance matrices from scipy.spatial.distance.cdist), on the same float64
samples.

    python benchmarks/metrics.py            # n in {1000, 5000}, d in {2, 64} (about 4 minutes; dcor takes
                                            # about 13 GB of memory at n = 5000, d = 64)
    python benchmarks/metrics.py --smoke    # seconds: proves the script runs (the tests run this)
    python benchmarks/metrics.py --check    # exit 1 when a target is missed
    python benchmarks/metrics.py --json r.json  # the table and the targets' verdicts also as JSON, in r.json

Each (method, n, d) runs in a fresh Python process, so that its peak memory (the growth of the resident set
over the process's state after the imports and the data) is its own. Reported: the V-statistic, its relative
difference from dcor's, the median wall time of the repeats and the ratio of dcor's and scipy's median to ours.

Targets (issue 7): agreement with dcor to 1e-12 relative; at least 5x faster than dcor and 2x faster than the
scipy computation; memory bounded by chunking (not three n-by-n matrices).
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

from _table import Column, Report, add_json_option  # benchmarks/_table.py, beside this script

METHODS = ("dgm_course", "dcor", "scipy")
REL_TOL, DCOR_SPEEDUP, SCIPY_SPEEDUP = 1e-12, 5.0, 2.0


def samples(n: int, d: int):
    """Two float64 samples (n, d): N(0, I) and N(0.1, I), the same in every process."""
    import torch

    gen = torch.Generator().manual_seed(0)
    x = torch.randn(n, d, generator=gen, dtype=torch.float64)
    return x, torch.randn(n, d, generator=gen, dtype=torch.float64) + 0.1


def one(method: str, n: int, d: int, repeats: int) -> dict[str, float]:
    """Time ``method`` on the (n, d) samples in this process; peak memory beyond the state before the first call."""
    import torch  # noqa: F401 - loaded before the baseline, so that its own memory is not counted as the method's

    x, y = samples(n, d)
    if method == "dgm_course":
        from dgm_course.metrics import energy_distance

        def compute() -> float:
            return float(energy_distance(x, y))
    elif method == "dcor":
        import dcor

        xn, yn = x.numpy(), y.numpy()

        def compute() -> float:
            return float(dcor.energy_distance(xn, yn))
    else:
        from scipy.spatial.distance import cdist

        xn, yn = x.numpy(), y.numpy()

        def compute() -> float:
            return float(2 * cdist(xn, yn).mean() - cdist(xn, xn).mean() - cdist(yn, yn).mean())

    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    value = compute()  # one untimed call: lazy initialisation (thread pools, caches) is not what is measured
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        value = compute()
        times.append(time.perf_counter() - t0)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    return {"value": value, "seconds": statistics.median(times), "peak_mib": peak / 1024}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, seconds")
    parser.add_argument("--check", action="store_true", help="exit with status 1 when a target is missed")
    parser.add_argument("--repeats", type=int, default=5, help="timed calls per method and size (default 5)")
    parser.add_argument("--one", nargs=3, metavar=("METHOD", "N", "D"), help=argparse.SUPPRESS)  # the child process
    add_json_option(parser)
    args = parser.parse_args()
    if args.one:
        method, n, d = args.one[0], int(args.one[1]), int(args.one[2])
        print(json.dumps(one(method, n, d, args.repeats)))
        return 0

    import torch

    sizes = [(300, 2), (300, 16)] if args.smoke else [(1000, 2), (1000, 64), (5000, 2), (5000, 64)]
    repeats = 1 if args.smoke else args.repeats
    print(f"float64; {torch.get_num_threads()} threads; torch {torch.__version__}; median of {repeats} call(s) per "
          "method and size after one untimed call, each method in its own process", flush=True)
    report = Report("metrics", smoke=args.smoke, repeats=repeats, sizes=sizes)
    records, missed = [], []
    for n, d in sizes:
        result = {}
        for method in METHODS:
            run = subprocess.run([sys.executable, str(Path(__file__)), "--one", method, str(n), str(d), "--repeats",
                                  str(repeats)], capture_output=True, text=True, check=False)
            if run.returncode != 0:
                raise RuntimeError(f"{method} at n={n}, d={d} failed:\n{run.stderr}")
            result[method] = json.loads(run.stdout.strip().splitlines()[-1])
            print(f"  n={n} d={d} {method}: {result[method]['seconds']:.3f} s", flush=True)
        ref = result["dcor"]["value"]
        for method in METHODS:
            r = result[method]
            rel = abs(r["value"] - ref) / abs(ref)
            speed = {m: result[m]["seconds"] / r["seconds"] for m in ("dcor", "scipy")}
            records.append(dict(n=n, d=d, method=method, value=r["value"], rel_diff=None if method == "dcor" else rel,
                                seconds=r["seconds"], dcor_ratio=speed["dcor"], scipy_ratio=speed["scipy"],
                                peak_mib=r["peak_mib"]))
            if method == "dgm_course":
                if not report.target(f"n={n}, d={d}: agreement with dcor <= {REL_TOL:g} relative", not rel > REL_TOL,
                                     n=n, d=d, rel_diff=rel):
                    missed.append(f"n={n}, d={d}: relative difference {rel:.1e} > {REL_TOL:g}")
                if not report.target(f"n={n}, d={d}: >= {DCOR_SPEEDUP:g}x faster than dcor",
                                     not speed["dcor"] < DCOR_SPEEDUP, n=n, d=d, speedup=speed["dcor"]):
                    missed.append(f"n={n}, d={d}: {speed['dcor']:.1f}x faster than dcor (target {DCOR_SPEEDUP:g}x)")
                if not report.target(f"n={n}, d={d}: >= {SCIPY_SPEEDUP:g}x faster than scipy",
                                     not speed["scipy"] < SCIPY_SPEEDUP, n=n, d=d, speedup=speed["scipy"]):
                    missed.append(f"n={n}, d={d}: {speed['scipy']:.2f}x faster than scipy (target {SCIPY_SPEEDUP:g}x)")
    print()
    report.table("energy distance", [
        Column("n", "n"), Column("d", "d"), Column("method", "method"), Column("energy distance (V)", "value", ".15g"),
        Column("rel. diff. from dcor", "rel_diff", ".1e"), Column("median time (s)", "seconds", ".3f"),
        Column("dcor time / this", "dcor_ratio", ".1f"), Column("scipy time / this", "scipy_ratio", ".2f"),
        Column("peak memory (MiB)", "peak_mib", ".0f"),
    ], records)
    print()
    print("targets: agreement with dcor <= 1e-12 relative; >= 5x faster than dcor; >= 2x faster than scipy")
    for line in missed or ["all met"]:
        print(("NOT MET " if missed else "") + line)
    report.write(args.json)
    return 1 if args.check and missed and not args.smoke else 0


if __name__ == "__main__":
    sys.exit(main())
