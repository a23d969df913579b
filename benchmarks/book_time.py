"""Each chapter's execution time in the last book build, against the 4-minute target (issue 22).

    python benchmarks/book_time.py                 # the book budget's build (_build/book)
    python benchmarks/book_time.py _build/smoke    # another build folder

Reads the notebook execution cache that ``scripts/book.sh`` keeps (jupyter-cache; the same numbers as the book's
execution report). Targets: no chapter over 240 s; the ten chapters that follow the source article (flows, VAEs,
GANs, evaluation and its three applications; named by subject, so a new chapter does not change the set) together
at most 20 minutes, the whole book at most 35. A chapter missing from the cache has not executed successfully since
the code last changed.
"""

from __future__ import annotations

import sys
from pathlib import Path

from _table import print_table  # benchmarks/_table.py, beside this script

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
    build = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "_build" / "book"
    paths = sorted((ROOT / "notebooks").glob("*.ipynb"))
    measured = times(build, paths)
    chapters = [p.stem for p in paths]
    rows, ok = [], True
    for name in chapters:
        s = measured.get(name)
        ok &= s is not None and s <= CHAPTER_LIMIT
        rows.append([name, "not executed" if s is None else f"{s:.0f}",
                     "-" if s is None else ("yes" if s <= CHAPTER_LIMIT else "NO")])
    article = [n for n in chapters if n[3:] in ARTICLE]
    assert len(article) == len(ARTICLE), f"the article's chapters are not all in notebooks/: {article}"
    article_s = sum(measured.get(n, 0.0) for n in article)
    total = sum(measured.get(n, 0.0) for n in chapters)
    ok &= article_s <= ARTICLE_LIMIT and total <= BOOK_LIMIT
    rows.append(["the article's ten", f"{article_s:.0f}", "yes" if article_s <= ARTICLE_LIMIT else "NO"])
    rows.append(["whole book", f"{total:.0f}", "yes" if total <= BOOK_LIMIT else "NO"])
    print(f"execution times of {build} (seconds; targets: {CHAPTER_LIMIT:.0f} a chapter, "
          f"{ARTICLE_LIMIT:.0f} for the article's ten, {BOOK_LIMIT:.0f} for the book)")
    print_table(["chapter", "seconds", "within target"], rows)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
