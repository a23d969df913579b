"""Open every page of the built book in headless Chromium, as a reader would.

Needs the built HTML (``DGM_BOOK_HTML``, set by scripts/test.sh after it builds the book) and Chromium
(Debian's package; ``CHROMIUM`` overrides the path). Each page must load with no failed request and no
request leaving this machine (the book reads offline), typeset its math with the vendored MathJax, show
its notebook figures, and carry the launch and repository buttons.
"""

from __future__ import annotations

import functools
import http.server
import os
import shutil
import threading
from pathlib import Path

import pytest
import yaml

HTML = os.environ.get("DGM_BOOK_HTML")
REPOSITORY = yaml.safe_load((Path(__file__).resolve().parent.parent / "_config.yml").read_text())["repository"]["url"]
pytestmark = pytest.mark.skipif(not HTML, reason="set DGM_BOOK_HTML to a built book (scripts/test.sh does)")


@pytest.fixture(scope="module")
def site():
    root = Path(HTML)
    assert (root / "index.html").exists(), f"no built book at {root}; run scripts/book.sh first"
    handler = functools.partial(_QuietHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield root, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    executable = os.environ.get("CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    assert executable, "Chromium is not installed: apt-get install chromium (scripts/test.sh does)"
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=executable,
            args=["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-sync",
                  "--disable-background-networking", "--disable-component-update"],
        )
        yield browser
        browser.close()


def _pages() -> list[str]:
    if not HTML:
        return []
    root = Path(HTML)
    skip = {"index.html"}  # a redirect to the landing page
    return sorted(str(p.relative_to(root)) for p in root.rglob("*.html") if p.name not in skip and "_static" not in p.parts)


def _visit(browser, url: str):
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    problems: list[str] = []
    page.on("requestfailed", lambda r: problems.append(f"failed request {r.url}: {r.failure}"))
    page.on("response", lambda r: r.status >= 400 and problems.append(f"HTTP {r.status} for {r.url}"))
    page.on("console", lambda m: m.type == "error" and problems.append(f"console error: {m.text}"))
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))

    def only_local(route):
        if route.request.url.startswith("http://127.0.0.1:"):
            route.continue_()
        else:
            problems.append(f"request leaves the machine: {route.request.url}")
            route.abort()

    page.route("**/*", only_local)
    page.goto(url, wait_until="load")
    page.wait_for_load_state("networkidle")
    return page, problems


def test_book_has_pages():
    assert len(_pages()) >= 4, _pages()


@pytest.mark.parametrize("name", _pages())
def test_page_reads_offline_with_math_figures_and_buttons(site, browser, name):
    root, base = site
    page, problems = _visit(browser, f"{base}/{name}")
    try:
        html = (root / name).read_text()
        if 'class="math' in html:
            page.wait_for_function("window.MathJax && MathJax.startup && MathJax.startup.promise", timeout=20_000)
            page.evaluate("MathJax.startup.promise")
            assert page.locator("mjx-container").count() > 0, "math is not typeset"
            assert page.locator("mjx-merror").count() == 0, "MathJax reports a TeX error"
        if name.startswith("notebooks/"):
            figures = page.locator("div.cell_output img")
            assert figures.count() >= 1, "a notebook page without figures"
            widths = figures.evaluate_all("imgs => imgs.map(i => i.complete ? i.naturalWidth : 0)")
            assert all(w > 0 for w in widths), f"figures that did not load: {widths}"
            assert page.locator('a[href*="colab.research.google.com"]').count() >= 1, "no Colab launch button"
            assert page.locator('a[href*="mybinder.org"]').count() >= 1, "no Binder launch button"
            raw_tables = page.locator("div.cell_output p").evaluate_all(
                "ps => ps.filter(p => p.textContent.trim().startsWith('|')).length")
            assert raw_tables == 0, "a Markdown table printed by a cell was not rendered as a table"
        assert page.locator(f'a[href^="{REPOSITORY}"]').count() >= 1, "no repository button"
        assert not problems, "\n".join(problems)
        shots = os.environ.get("DGM_SCREENSHOTS")
        if shots:
            Path(shots).mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(Path(shots) / (name.replace("/", "_") + ".png")), full_page=False)
    finally:
        page.close()


def test_exercise_solutions_are_hidden_until_clicked(site, browser):
    root, base = site
    notebooks = [n for n in _pages() if n.startswith("notebooks/")]
    page, problems = _visit(browser, f"{base}/{notebooks[0]}")
    try:
        solution = page.locator("details.solution, div.solution.dropdown, .solution.toggle-hidden").first
        assert solution.count() == 1, "no hidden solution found"
        body = page.locator(".solution .solution-content, .solution section").first
        assert not body.is_visible(), "a solution is visible before it is clicked"
    finally:
        page.close()


def test_no_page_shows_the_build_machine_warnings_or_paths():
    """Warnings of the build machine (a missing widget library, a path into its site-packages) are not text for
    readers; nor is a Colab install cell above a chapter's title."""
    pages = sorted(Path(HTML).glob("notebooks/*.html"))
    assert pages, f"no chapter pages under {HTML}"
    for page in pages:
        text = page.read_text()
        for leak in ("TqdmWarning", "site-packages", "IProgress not found"):
            assert leak not in text, f"{page.name} shows {leak!r}"
        title = text.find("<h1")
        assert title != -1 and "pip install" not in text[:title], f"{page.name}: code above the chapter's title"
