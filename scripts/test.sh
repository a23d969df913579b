#!/usr/bin/env bash
# Run every test: the linter and the type checker, a strict build of the book, unit tests, the chapters'
# checked cells, and a headless-browser check of the built book.
# The book is built first, strict, at the book budget: every chapter executes as the book shows it and checks
# every claim its text makes (about forty minutes on 2 CPU cores; the notebook cache is dropped when the
# package changes, as scripts/book.sh does). DGM_TEST_BUDGET=smoke builds the quick book instead (minutes),
# where the claims that need the book's training print SKIP. The chapters' times are printed against their 4
# minutes, not enforced (a loaded machine is slower). Each chapter executes once: tests/test_checked_cells.py
# compares the checked cells of the notebooks the build executed with their recorded outputs (nbval's work,
# without executing anything again). Arguments go to pytest: scripts/test.sh -m "not slow" skips the slow tests.
# The time of each stage is printed at the end, whether the run passes or fails.
set -euo pipefail
budget="${DGM_TEST_BUDGET:-book}"
case "$budget" in
    book|smoke) ;;
    *) echo "DGM_TEST_BUDGET must be book or smoke; got '$budget'" >&2; exit 2 ;;
esac

stages=()
stage_start=$SECONDS
current=setup
stage() {  # stage NEXT: the stage that ran since the last call is done; NEXT runs from now
    stages+=("$(printf '%-8s %5d s' "$current" "$((SECONDS - stage_start))")")
    current=$1
    stage_start=$SECONDS
}
report() {
    local status=$?
    echo "[test] time per stage:"
    if [ "${#stages[@]}" -gt 0 ]; then printf '[test]   %s\n' "${stages[@]}"; fi
    if [ "$current" != done ]; then
        printf '[test]   %-8s %5d s (stopped: exit status %d)\n' "$current" "$((SECONDS - stage_start))" "$status"
    fi
    printf '[test]   %-8s %5d s\n' total "$SECONDS"
}
trap report EXIT

source "$(dirname "${BASH_SOURCE[0]}")/setup.sh" --browser
stage lint

ruff check dgm_course tests benchmarks scripts notebooks/conftest.py
mypy                            # the package's types ([tool.mypy] in pyproject.toml)
stage book

DGM_BUDGET="$budget" "$ROOT/scripts/book.sh"
out="$(book_out "$budget")"   # where scripts/book.sh wrote it
python "$ROOT/benchmarks/book_time.py" "$ROOT/$out" || true   # each chapter's time against its 4 minutes
stage pytest

export DGM_BUDGET=smoke         # what the tests train, they train at the smoke budget
export DGM_PROGRESS=0
export DGM_BOOK_HTML="$ROOT/$out/_build/html"
python -m pytest tests -p no:cacheprovider "$@"
stage done
