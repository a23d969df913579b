#!/usr/bin/env bash
# Run every test: the linter, a strict build of the book, unit tests, the notebooks under nbval, and a
# headless-browser check of the built book.
# The book is built first, strict, at the book budget: every chapter executes as the book shows it and checks
# every claim its text makes (about half an hour on 2 CPU cores; the notebook cache is dropped when the
# package changes, as scripts/book.sh does). DGM_TEST_BUDGET=smoke builds the quick book instead (minutes),
# where the claims that need the book's training print SKIP. The chapters' times are printed against their 4
# minutes, not enforced (a loaded machine is slower).
set -euo pipefail
budget="${DGM_TEST_BUDGET:-book}"
case "$budget" in
    book|smoke) ;;
    *) echo "DGM_TEST_BUDGET must be book or smoke; got '$budget'" >&2; exit 2 ;;
esac
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh" --browser

ruff check dgm_course tests benchmarks scripts notebooks/conftest.py

DGM_BUDGET="$budget" "$ROOT/scripts/book.sh"
out="$(book_out "$budget")"   # where scripts/book.sh wrote it
python "$ROOT/benchmarks/book_time.py" "$ROOT/$out" || true   # each chapter's time against its 4 minutes

export DGM_BUDGET=smoke         # nbval runs every notebook at the smoke budget against its recorded outputs
export DGM_PROGRESS=0
export DGM_BOOK_HTML="$ROOT/$out/_build/html"
python -m pytest tests notebooks --nbval-lax --nbval-current-env -p no:cacheprovider "$@"
