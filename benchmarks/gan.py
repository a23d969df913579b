"""Benchmark of the GANs of the GAN and Wasserstein GAN chapters on the 25-Gaussian grid (means (-4 + 2i, -4 + 2j), std
0.05): modes captured and high-quality samples (within 3 std of a mode; a mode counts with at least 20 of 2,500
samples, as in VEEGAN and PacGAN), energy distance to 2,500 held-out data points, training time; mean, spread
and worst of several seeds. The target counts as met only when every seed meets it.

    python benchmarks/gan.py               # every row, 3 seeds (about 45 minutes on 2 CPU cores)
    python benchmarks/gan.py --seeds 5     # more seeds
    python benchmarks/gan.py --only wgan   # the rows whose name contains "wgan"
    python benchmarks/gan.py --smoke       # seconds: proves the script runs (the tests run this)
    python benchmarks/gan.py --json r.json # the table and the target's verdict also as JSON, in r.json

Rows: the four objectives with their published defaults (dgm_course.gan.TEXTBOOK), then the ladder from the
textbook non-saturating GAN to its last rung (dgm_course.gan.BEST), one change at a time (dgm_course.gan.LADDER;
the GAN chapter trains the two ends of its batch-256 rungs).
Published on this grid (Srivastava et al. 2017; Lin et al. 2018): GAN 3.3 modes / 0.5 % high quality,
VEEGAN 24.6 / 40 %, PacGAN4 24.8 modes.
"""

from __future__ import annotations

import argparse
import statistics
import sys

import torch

from dgm_course.gan import BEST, LADDER, TEXTBOOK, Recipe, train_2d

from _table import Column, Report, add_json_option  # benchmarks/_table.py, beside this script

TARGET_MODES, TARGET_HQ, TARGET_SECONDS = 24, 0.80, 300


def spread(values: list[float], fmt: str) -> str:
    """``mean ± std`` of the seeds (std 0 for one seed)."""
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):{fmt}} ± {std:{fmt}}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, seconds")
    parser.add_argument("--seeds", type=int, default=3, help="seeds per row (default 3)")
    parser.add_argument("--only", help="run only the rows whose name contains this text (e.g. minimax)")
    add_json_option(parser)
    args = parser.parse_args()
    seeds = 1 if args.smoke else args.seeds
    report = Report("gan", smoke=args.smoke, seeds=list(range(seeds)), data="25gaussians")
    print(f"{torch.get_num_threads()} threads; torch {torch.__version__}; {seeds} seed(s) per row", flush=True)

    def shrink(r: Recipe) -> Recipe:
        return r.but(hidden=16, steps=20, batch=min(r.batch, 64)) if args.smoke else r

    variants = [(f"{name} (textbook)", recipe) for name, recipe in TEXTBOOK.items()]
    variants += [(name, recipe) for name, recipe in LADDER.items() if recipe != TEXTBOOK["nonsaturating"]]
    if args.only:
        variants = [(name, recipe) for name, recipe in variants if args.only in name]
        if not variants:
            parser.error(f"no row's name contains {args.only!r}")
    records, results = [], {}
    for name, recipe in variants:
        recipe = shrink(recipe)
        runs = []
        for seed in range(seeds):
            _, history = train_2d(recipe, "25gaussians", seed=seed, progress=False)
            final = history.evaluations[-1]
            runs.append((final["modes"], final["hq"], final["energy"], history.seconds))
            print(f"  {name}, seed {seed}: {final['modes']:.0f} modes, {100 * final['hq']:.1f} % high quality, "
                  f"energy {final['energy']:.4f}, {history.seconds:.0f} s", flush=True)
        modes, hq, energy, seconds = (list(v) for v in zip(*runs))
        results[recipe] = (modes, hq, seconds)
        records.append(dict(variant=name, objective=recipe.objective, hidden=recipe.hidden, depth=recipe.depth,
                            lr=recipe.lr_d, batch=recipe.batch, steps=recipe.steps, n_critic=recipe.n_critic,
                            train_s=seconds, modes=modes, hq_percent=[100 * h for h in hq], energy=energy))  # per seed
    print()
    report.table("variants", [
        Column("variant", "variant"), Column("objective", "objective"),
        Column("MLPs", None, lambda r: f"{r['hidden']}x{r['depth']}"), Column("lr", "lr", "g"),
        Column("batch", "batch"),
        Column("generator steps", "steps"), Column("critic steps", "n_critic"),
        Column("train (s)", "train_s", lambda v: spread(v, ".0f")),
        Column("modes of 25", "modes", lambda v: f"{spread(v, '.1f')} (min {min(v):.0f})"),
        Column("high quality (%)", "hq_percent", lambda v: f"{spread(v, '.1f')} (min {min(v):.1f})"),
        Column("energy distance", "energy", lambda v: spread(v, ".4f")),
    ], records)
    if shrink(BEST) not in results:
        report.write(args.json)
        return 0
    modes, hq, seconds = results[shrink(BEST)]
    met = min(modes) >= TARGET_MODES and min(hq) >= TARGET_HQ and max(seconds) <= TARGET_SECONDS
    print(f"\nTarget (the ladder's last rung, under every seed): >= {TARGET_MODES} modes, >= {100 * TARGET_HQ:.0f} % "
          f"high quality, <= {TARGET_SECONDS} s: {'met' if met else 'NOT met'} (worst seed: {min(modes):.0f} modes, "
          f"{100 * min(hq):.1f} %, {max(seconds):.0f} s)")
    report.target(f"the ladder's last rung, under every seed: >= {TARGET_MODES} modes, >= {100 * TARGET_HQ:.0f} % "
                  f"high quality, <= {TARGET_SECONDS} s", met, min_modes=min(modes),
                  min_hq_percent=100 * min(hq), max_train_s=max(seconds), need_modes=TARGET_MODES,
                  need_hq_percent=100 * TARGET_HQ, need_train_s=TARGET_SECONDS)
    report.write(args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
