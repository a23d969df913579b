#!/usr/bin/env bash
# Run every test: the linter, unit tests, the notebooks under nbval, and a headless-browser check of the built book.
# The book is built first (strict, at the smoke budget) so that the browser test has pages to open.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh" --browser

ruff check dgm_course tests benchmarks scripts notebooks/conftest.py

export DGM_BUDGET=smoke
"$ROOT/scripts/book.sh"

export DGM_PROGRESS=0
export DGM_BOOK_HTML="$ROOT/_build/smoke/_build/html"
python -m pytest tests notebooks --nbval-lax --nbval-current-env -p no:cacheprovider "$@"
