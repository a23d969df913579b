# Sourced by scripts/book.sh and scripts/test.sh: installs what the book and the tests need, once.
#   - system packages (apt-get) that are missing: python3-venv, npm, dataset-fashion-mnist (the offline
#     source of Fashion-MNIST), and chromium and libatomic1 (for Playwright's driver) with --browser
#   - .venv with the exact versions of requirements/lock.txt and the package itself (editable)
#   - MathJax 3, vendored into book/_static/mathjax so the built book reads offline
# Each step is skipped when already done (stamp files), so a second run takes seconds.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
MATHJAX_VERSION=3.2.2
want_browser=0
[ "${1:-}" = "--browser" ] && want_browser=1

say() { printf '\033[1m[setup]\033[0m %s\n' "$*"; }

die() { printf '\033[1m[setup]\033[0m %s\n' "$*" >&2; exit 1; }

# where scripts/book.sh writes the book of budget $1 under DGM_SEED: _build/<budget>, or _build/<budget>-seed<k>
book_out() { if [ "${DGM_SEED:-0}" = 0 ]; then echo "_build/$1"; else echo "_build/$1-seed$DGM_SEED"; fi; }

# --- what this machine must have --------------------------------------------------------------------
command -v python3 >/dev/null || die "python3 is missing: install Python 3.11 (Debian 12: apt-get install python3)"
py_version="$(python3 -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')"
[ "$py_version" = "3.11" ] || die "the pinned environment (requirements/lock.txt) is for Python 3.11; python3 is $py_version. \
Install Python 3.11 (Debian 12 ships it; elsewhere e.g. pyenv or the deadsnakes packages) and put it first on PATH."
os_id="$(. /etc/os-release 2>/dev/null && echo "${ID:-unknown}")"

# --- system packages -------------------------------------------------------------------------------
missing=()
command -v python3 >/dev/null || missing+=(python3)
python3 -c 'import ensurepip, venv' 2>/dev/null || missing+=(python3-venv)
command -v npm >/dev/null || missing+=(npm)
[ -f /usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz ] || missing+=(dataset-fashion-mnist)
if [ "$want_browser" = 1 ] && [ -z "${CHROMIUM:-}" ] && ! command -v chromium >/dev/null; then
    [ "$os_id" = ubuntu ] && die "the browser test needs Chromium, and Ubuntu's chromium package is a snap stub that \
fails without snapd: install it with 'snap install chromium' (or Google Chrome) and set CHROMIUM=/path/to/browser"
    missing+=(chromium)
fi
# Playwright's Node.js driver, which the browser tests start, links libatomic; a minimal Debian 12 lacks it
if [ "$want_browser" = 1 ]; then
    libraries="$(ldconfig -p 2>/dev/null || /sbin/ldconfig -p 2>/dev/null || true)"  # whole, so no pipe breaks early
    grep -q 'libatomic\.so\.1' <<<"$libraries" || missing+=(libatomic1)
fi
if [ "${#missing[@]}" -gt 0 ]; then
    command -v apt-get >/dev/null || die "missing: ${missing[*]}; this script installs them with apt-get (Debian), \
which this machine does not have: install them with its package manager, then run again"
    sudo=""
    if [ "$(id -u)" -ne 0 ]; then
        command -v sudo >/dev/null || die "missing: ${missing[*]}; installing them needs root: run as root, or \
install them (apt-get install ${missing[*]}) and run again"
        sudo="sudo"
    fi
    say "installing system packages: ${missing[*]}"
    $sudo apt-get update -q
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

# --- Python environment ----------------------------------------------------------------------------
stamp_of() { cat "$@" | sha256sum | cut -c1-16; }
py_stamp="$(stamp_of requirements/lock.txt pyproject.toml)"
if [ ! -x .venv/bin/python ] || [ "$(cat .venv/.dgm-stamp 2>/dev/null)" != "$py_stamp" ]; then
    say "creating .venv with the pinned dependencies (requirements/lock.txt)"
    [ -x .venv/bin/python ] || python3 -m venv .venv
    .venv/bin/python -m pip install -q --upgrade pip
    .venv/bin/python -m pip install -q -r requirements/lock.txt
    .venv/bin/python -m pip install -q --no-deps -e .
    echo "$py_stamp" > .venv/.dgm-stamp
fi
export PATH="$ROOT/.venv/bin:$PATH"
export VIRTUAL_ENV="$ROOT/.venv"

# --- MathJax, served from the book itself ----------------------------------------------------------
if [ "$(cat book/_static/mathjax/.version 2>/dev/null)" != "$MATHJAX_VERSION" ]; then
    say "vendoring MathJax $MATHJAX_VERSION into book/_static/mathjax"
    tmp="$(mktemp -d)"
    (cd "$tmp" && npm pack --silent "mathjax@$MATHJAX_VERSION" >/dev/null && tar xzf mathjax-*.tgz)
    rm -rf book/_static/mathjax
    mkdir -p book/_static
    cp -r "$tmp/package/es5" book/_static/mathjax
    echo "$MATHJAX_VERSION" > book/_static/mathjax/.version
    rm -rf "$tmp"
fi
