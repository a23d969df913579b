"""Benchmark of the applications chapters: executes the three notebooks (super-resolution, galaxy deconvolution,
style transfer) as the book does, times each, and prints the quality of every method on the held-out sets, read
from the numbers each notebook glues into its prose.

    python benchmarks/applications.py            # the book budget (about 15 minutes on 2 CPU cores)
    python benchmarks/applications.py --smoke    # seconds per notebook: proves the script runs (the tests run it)
    python benchmarks/applications.py --check    # exit 1 when a target is missed

    python benchmarks/applications.py --only style   # one chapter (super-resolution, galaxies or style)
    python benchmarks/applications.py --json r.json  # the table and the targets' verdicts also as JSON, in r.json

Targets (issue 8): SRResNet beats bicubic interpolation by at least 1 dB PSNR on the held-out photographs; the
galaxy GAN beats Richardson-Lucy by at least 3 dB PSNR on the held-out galaxies. (Issue 24:) each painting's
stylised image is less than half as far from the painting as the photograph, by the energy distance between their
8-pixel colour patches (style.patch_energy), with the content measure reported. All are also claims of the
chapters' sanity cells, so ``python benchmarks/claims.py --report`` shows them under every seed built (this script
runs the seed in ``DGM_SEED``).
"""

from __future__ import annotations

import argparse
import ast
import os
import sys
import time
from pathlib import Path

from _table import Column, Report, add_json_option  # benchmarks/_table.py, beside this script

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = {"super-resolution": "12_super_resolution", "galaxies": "13_galaxy_deconvolution",
             "style": "14_style_transfer"}
SR_GAIN, GALAXY_GAIN, PATCH_RATIO = 1.0, 3.0, 0.5
PSNR_PLACES = {"super-resolution": 2, "galaxies": 1}  # the decimals each chapter glues its PSNR with


def run(name: str, budget: str, keep: Path | None = None) -> tuple[dict[str, str], float]:
    """Execute notebooks/<name>.ipynb at ``budget`` (saving the executed copy in ``keep``); return its glued values
    (as text) and its wall time."""
    import nbformat
    from nbclient import NotebookClient

    os.environ.update(DGM_BUDGET=budget, DGM_PROGRESS="0")
    nb = nbformat.read(ROOT / "notebooks" / f"{name}.ipynb", as_version=4)
    start = time.perf_counter()
    NotebookClient(nb, timeout=3600, kernel_name="python3",
                   resources={"metadata": {"path": str(ROOT / "notebooks")}}).execute()
    seconds = time.perf_counter() - start
    if keep is not None:
        keep.mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, keep / f"{name}.ipynb")
    glued = {}
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            record = output.get("metadata", {}).get("scrapbook")
            if record:
                text = output["data"][record["mime_prefix"] + "text/plain"]
                glued[record["name"]] = str(ast.literal_eval(text))
    return glued, seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--smoke", action="store_true", help="the notebooks' smoke budget (seconds each)")
    parser.add_argument("--check", action="store_true", help="exit with status 1 when a target is missed")
    parser.add_argument("--keep", type=Path, help="a folder to save the executed notebooks in (with their figures)")
    parser.add_argument("--only", nargs="+", choices=list(NOTEBOOKS), help="run only these chapters")
    add_json_option(parser)
    args = parser.parse_args()
    budget = "smoke" if args.smoke else "book"
    from dgm_course.budget import course_seed

    report = Report("applications", smoke=args.smoke, budget=budget, dgm_seed=course_seed())
    results = {chapter: run(name, budget, args.keep) for chapter, name in NOTEBOOKS.items()
               if not args.only or chapter in args.only}

    # the numbers as the chapters glue them (rounded); a style row's patch ratio also as its glued text, with the
    # ratio at 16 pixels in its own words
    records, verdicts = [], []
    if "super-resolution" in results:
        sr, sr_time = results["super-resolution"]
        for key, method in [("bicubic", "bicubic"), ("srresnet", "SRResNet"), ("srgan", "SRGAN")]:
            records.append(dict(chapter="super-resolution", method=method,
                                test_set=f"held-out photographs ({sr['test_names']})", psnr=float(sr[f"psnr_{key}"]),
                                ssim=float(sr[f"ssim_{key}"]), detail=float(sr[f"detail_{key}"]), notebook_s=sr_time))
        gain = float(sr["srresnet_gain"])
        verdicts.append((f"SRResNet over bicubic: {gain:+.2f} dB (target >= +{SR_GAIN:.0f} dB)", gain >= SR_GAIN))
        report.target(f"SRResNet over bicubic >= +{SR_GAIN:.0f} dB PSNR", gain >= SR_GAIN, gain_db=gain)
    if "galaxies" in results:
        gal, gal_time = results["galaxies"]
        for key, method in [("obs", "observed"), ("wiener", "Wiener"), ("rl", "Richardson-Lucy"),
                            ("l1", "U-Net, L1 only"), ("gan", "conditional GAN")]:
            records.append(dict(chapter="galaxies", method=method, test_set=f"{gal['n_test']} held-out galaxies",
                                psnr=float(gal[f"psnr_{key}"]), ssim=float(gal[f"ssim_{key}"]),
                                detail=float(gal[f"beyond_{key}"]), notebook_s=gal_time))
        gain = float(gal["gain_over_rl"])
        verdicts.append((f"galaxy GAN over Richardson-Lucy: {gain:+.2f} dB (target >= +{GALAXY_GAIN:.0f} dB)",
                         gain >= GALAXY_GAIN))
        report.target(f"galaxy GAN over Richardson-Lucy >= +{GALAXY_GAIN:.0f} dB PSNR", gain >= GALAXY_GAIN,
                      gain_db=gain)
    if "style" in results:
        sty, sty_time = results["style"]
        for style in sty["styles"].split(", "):
            ratio = float(sty[f"patch_ratio_value_{style}"])
            records.append(dict(chapter="style transfer", method=f"Gatys et al., style {style}",
                                test_set=f"content {sty['content']}", psnr=None, ssim=None,
                                style_ratio=float(sty[f"style_ratio_{style}"]), patch_ratio=ratio,
                                patch_ratio_text=sty[f"patch_ratio_{style}"],
                                content=float(sty[f"content_{style}"]), notebook_s=sty_time))
            verdicts.append((f"{style}: patch energy / photograph's {ratio:.2f} (target < {PATCH_RATIO})",
                             ratio < PATCH_RATIO))
            report.target(f"{style}: patch energy / photograph's < {PATCH_RATIO}", ratio < PATCH_RATIO,
                          patch_ratio=ratio)

    def psnr(r: dict) -> str:
        return "-" if r["psnr"] is None else f"{r['psnr']:.{PSNR_PLACES[r['chapter']]}f}"

    def other(r: dict) -> str:
        if "detail" in r:
            return f"detail {r['detail']:.2f}"
        return (f"style loss / start {r['style_ratio']:.3f}; patch energy / photograph's {r['patch_ratio_text']}; "
                f"content {r['content']:.3f}")

    report.table("methods", [
        Column("chapter", "chapter"), Column("method", "method"), Column("test set", "test_set"),
        Column("PSNR (dB)", None, psnr), Column("SSIM", "ssim", ".3f"), Column("other", None, other),
        Column("notebook (s)", "notebook_s", ".0f"),
    ], records)

    print(f"\nbudget: {budget}" + (f"; features: {results['style'][0]['vgg_source']}" if "style" in results else ""))
    report.data.update(features=results["style"][0]["vgg_source"] if "style" in results else None)
    for text, met in verdicts:
        print(f"{text}: {'met' if met else 'MISSED'}")
    missed = not all(met for _, met in verdicts)
    report.write(args.json)
    return 1 if args.check and missed and not args.smoke else 0


if __name__ == "__main__":
    sys.exit(main())
