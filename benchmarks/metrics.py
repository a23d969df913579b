"""Benchmark of the energy distance: ours (dgm_course.metrics.energy_distance) against dcor's and against a
plain scipy computation (three full distance matrices from scipy.spatial.distance.cdist), on the same float64
samples.

    python benchmarks/metrics.py            # n in {1000, 5000}, d in {2, 64} (about 4 minutes; dcor takes
                                            # about 13 GB of memory at n = 5000, d = 64)
    python benchmarks/metrics.py --smoke    # seconds: proves the script runs (the tests run this)
    python benchmarks/metrics.py --check    # exit 1 when a target is missed

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

from _table import print_table  # benchmarks/_table.py, beside this script

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
    rows, missed = [], []
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
            rows.append([str(n), str(d), method, f"{r['value']:.15g}", "-" if method == "dcor" else f"{rel:.1e}",
                         f"{r['seconds']:.3f}", f"{speed['dcor']:.1f}", f"{speed['scipy']:.2f}",
                         f"{r['peak_mib']:.0f}"])
            if method == "dgm_course":
                if rel > REL_TOL:
                    missed.append(f"n={n}, d={d}: relative difference {rel:.1e} > {REL_TOL:g}")
                if speed["dcor"] < DCOR_SPEEDUP:
                    missed.append(f"n={n}, d={d}: {speed['dcor']:.1f}x faster than dcor (target {DCOR_SPEEDUP:g}x)")
                if speed["scipy"] < SCIPY_SPEEDUP:
                    missed.append(f"n={n}, d={d}: {speed['scipy']:.2f}x faster than scipy (target {SCIPY_SPEEDUP:g}x)")
    print()
    print_table(["n", "d", "method", "energy distance (V)", "rel. diff. from dcor", "median time (s)",
                 "dcor time / this", "scipy time / this", "peak memory (MiB)"], rows)
    print()
    print("targets: agreement with dcor <= 1e-12 relative; >= 5x faster than dcor; >= 2x faster than scipy")
    for line in missed or ["all met"]:
        print(("NOT MET " if missed else "") + line)
    return 1 if args.check and missed and not args.smoke else 0


if __name__ == "__main__":
    sys.exit(main())
