"""Each chapter's execution time in the last book build, against the 4-minute target (issue 22).

    python benchmarks/book_time.py                 # the book budget's build (_build/book)
    python benchmarks/book_time.py _build/smoke    # another build folder
    python benchmarks/book_time.py --json r.json   # the table and the targets' verdicts also as JSON, in r.json

Reads the notebook execution cache that ``scripts/book.sh`` keeps (jupyter-cache; the same numbers as the book's
execution report). Targets: no chapter over 240 s; the ten chapters that follow the source article (flows, VAEs,
GANs, evaluation and its three applications; named by subject, so a new chapter does not change the set) together
at most 20 minutes, the whole book at most 35. A chapter missing from the cache has not executed successfully since
the code last changed.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from _table import Column, Report, add_json_option  # benchmarks/_table.py, beside this script

ROOT = Path(__file__).resolve().parent.parent
CHAPTER_LIMIT, ARTICLE_LIMIT, BOOK_LIMIT = 240.0, 20 * 60.0, 35 * 60.0
ARTICLE = ("unsupervised_learning", "normalizing_flows", "continuous_flows", "variational_autoencoders", "gans",
           "wasserstein_gans", "evaluation", "super_resolution", "galaxy_deconvolution", "style_transfer")


def times(build: Path, chapters: list[Path]) -> dict[str, float]:
    """Execution seconds of each chapter as it is now (the cache keeps older versions too: only the record that
    matches the current notebook counts)."""
    from jupyter_cache import get_cache

    cache_dir = build / "_build" / ".jupyter_cache"
    if not cache_dir.exists():
        sys.exit(f"no execution cache in {cache_dir}: build the book first (scripts/book.sh)")
    cache, found = get_cache(str(cache_dir)), {}
    for path in chapters:
        try:
            record = cache.match_cache_file(str(path))
        except KeyError:
            continue  # this version of the chapter has not executed successfully
        seconds = record.data.get("execution_seconds")
        found[path.stem] = float("nan") if seconds is None else float(seconds)
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("build", nargs="?", type=Path, default=ROOT / "_build" / "book",
                        help="the build folder (default: _build/book)")
    add_json_option(parser)
    args = parser.parse_args()
    build = args.build
    paths = sorted((ROOT / "notebooks").glob("*.ipynb"))
    measured = times(build, paths)
    chapters = [p.stem for p in paths]
    records = []
    for name in chapters:
        s = measured.get(name)  # None: not executed since the code last changed
        records.append(dict(chapter=name, seconds=s, met=None if s is None else s <= CHAPTER_LIMIT))
    article = [n for n in chapters if n[3:] in ARTICLE]
    assert len(article) == len(ARTICLE), f"the article's chapters are not all in notebooks/: {article}"
    article_s = sum(measured.get(n, 0.0) for n in article)
    total = sum(measured.get(n, 0.0) for n in chapters)
    records.append(dict(chapter="the article's ten", seconds=article_s, met=article_s <= ARTICLE_LIMIT))
    records.append(dict(chapter="whole book", seconds=total, met=total <= BOOK_LIMIT))
    report = Report("book_time", build=str(build))
    print(f"execution times of {build} (seconds; targets: {CHAPTER_LIMIT:.0f} a chapter, "
          f"{ARTICLE_LIMIT:.0f} for the article's ten, {BOOK_LIMIT:.0f} for the book)")
    report.table("chapters", [Column("chapter", "chapter"),
                              Column("seconds", "seconds", lambda s: "not executed" if s is None else f"{s:.0f}"),
                              Column("within target", "met")], records)
    late = [r["chapter"] for r in records[:-2] if not r["met"]]  # over the limit or not executed
    ok = report.target(f"every chapter executed, in <= {CHAPTER_LIMIT:.0f} s", not late, over_or_missing=late)
    ok &= report.target(f"the article's ten chapters in <= {ARTICLE_LIMIT:.0f} s", article_s <= ARTICLE_LIMIT,
                        seconds=article_s)
    ok &= report.target(f"the whole book in <= {BOOK_LIMIT:.0f} s", total <= BOOK_LIMIT, seconds=total)
    report.write(args.json)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
