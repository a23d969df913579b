#!/usr/bin/env bash
# Build the book: set up the environment, execute every notebook, write the HTML.
#   scripts/book.sh                     # the book budget (default), into _build/book/_build/html
#   DGM_BUDGET=smoke scripts/book.sh    # seconds per notebook, into _build/smoke/_build/html
# Notebook results are cached (jupyter-cache) per budget; the cache is dropped when the package changes.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"

export DGM_BUDGET="${DGM_BUDGET:-book}"
export DGM_PROGRESS=0          # no progress bars in the rendered pages
out="_build/$DGM_BUDGET"
code_stamp="$(find dgm_course scripts \( -name '*.py' -o -name '*.sh' \) -print0 | sort -z | xargs -0 cat | cat - requirements/lock.txt | sha256sum | cut -c1-16)"
if [ "$(cat "$out/.code-stamp" 2>/dev/null)" != "$code_stamp" ]; then
    rm -rf "$out/_build/.jupyter_cache"
fi
rm -rf "$out/_build/html"   # no stale pages; the execution cache stays
mkdir -p "$out"
echo "[book] budget=$DGM_BUDGET -> $out/_build/html"
start=$SECONDS
jupyter-book build . --path-output "$out" --all --warningiserror --nitpick --keep-going
echo "$code_stamp" > "$out/.code-stamp"
echo "[book] built in $((SECONDS - start)) s: open $out/_build/html/index.html"
