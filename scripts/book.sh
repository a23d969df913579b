#!/usr/bin/env bash
# Build the book: set up the environment, execute every notebook, write the HTML.
#   scripts/book.sh                     # the book budget (default), into _build/book/_build/html
#   DGM_BUDGET=smoke scripts/book.sh    # seconds per notebook, into _build/smoke/_build/html
#   DGM_SEED=3 scripts/book.sh          # the whole book under another seed, into _build/book-seed3/_build/html
# Notebook results are cached (jupyter-cache) per budget and seed, and dropped when the package changes; a
# chapter that fails leaves the chapters already executed in the cache, so the next run starts from there.
# Each chapter's checked claims are recorded in $out/claims/ (benchmarks/claims.py reads them).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"

export DGM_BUDGET="${DGM_BUDGET:-book}"
export DGM_SEED="${DGM_SEED:-0}"
export DGM_PROGRESS=0          # no progress bars in the rendered pages
out="$(book_out "$DGM_BUDGET")"
export DGM_CLAIMS_DIR="$ROOT/$out/claims"
code_stamp="$(find dgm_course scripts \( -name '*.py' -o -name '*.sh' -o -name '*.jpg' \) -print0 | sort -z | xargs -0 cat | cat - requirements/lock.txt | sha256sum | cut -c1-16)"
if [ "$(cat "$out/.code-stamp" 2>/dev/null)" != "$code_stamp" ]; then
    rm -rf "$out/_build/.jupyter_cache" "$DGM_CLAIMS_DIR"   # executed by other code: execute everything again
fi
rm -rf "$out/_build/html"   # no stale pages; the execution cache stays
mkdir -p "$out"
echo "$code_stamp" > "$out/.code-stamp"   # what the cache holds from now on was executed by this code
echo "[book] budget=$DGM_BUDGET seed=$DGM_SEED -> $out/_build/html"
start=$SECONDS
if ! jupyter-book build . --path-output "$out" --all --warningiserror --nitpick --keep-going; then
    echo "[book] the build failed after $((SECONDS - start)) s; the message above names the chapter and what failed." >&2
    echo "[book] Every chapter that executed stays in the cache: after a fix, scripts/book.sh executes only what is" >&2
    echo "[book] missing. One chapter alone: DGM_BUDGET=$DGM_BUDGET DGM_SEED=$DGM_SEED python scripts/notebooks.py run NAME" >&2
    echo "[book] (NAME as in notebooks/, e.g. 12_super_resolution); execution times: python benchmarks/book_time.py" >&2
    exit 1
fi
echo "[book] built in $((SECONDS - start)) s: open $out/_build/html/index.html"
