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
pytestmark = [pytest.mark.slow,  # a built book and a browser
              pytest.mark.skipif(not HTML, reason="set DGM_BOOK_HTML to a built book (scripts/test.sh does)")]


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
    return sorted(str(p.relative_to(root)) for p in root.rglob("*.html")
                  if p.name not in skip and "_static" not in p.parts)


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
        broken = page.locator("img").evaluate_all(
            "imgs => imgs.filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.getAttribute('src') || i.id)")
        assert not broken, f"images that did not render: {broken}"
        if name.startswith("notebooks/"):
            assert page.locator("div.cell_output img").count() >= 1, "a notebook page without figures"
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


def test_every_animation_advances_one_frame_on_click(site, browser):
    """matplotlib's animation controls (plotting.animation_html): "Next frame" moves the slider by one and shows
    another picture."""
    root, base = site
    pages = [n for n in _pages() if 'class="animation"' in (root / n).read_text()]
    assert pages, "no page shows an animation"
    for name in pages:
        page, problems = _visit(browser, f"{base}/{name}")
        try:
            for animation in page.locator("div.animation").all():
                animation.scroll_into_view_if_needed()
                slider, picture = animation.locator("input.anim-slider"), animation.locator("img")
                before = (slider.input_value(), picture.get_attribute("src"))
                assert before[0] == "0" and before[1], f"{name}: the animation does not start on its first frame"
                animation.locator('button[title="Next frame"]').click()
                after = (slider.input_value(), picture.get_attribute("src"))
                assert after[0] == "1" and after[1] != before[1], f"{name}: Next frame did not advance ({after[0]})"
                animation.locator('button[title="Previous frame"]').click()
                assert slider.input_value() == "0", f"{name}: Previous frame did not go back"
            assert not problems, "\n".join(problems)
        finally:
            page.close()


def test_the_search_page_finds_a_word_from_each_chapter(site, browser):
    """Sphinx's search, offline: each chapter's page is among the results for the longest word of its title."""
    import re

    root, base = site
    chapters = [n for n in _pages() if n.startswith("notebooks/")]
    assert chapters
    for name in chapters:
        title = re.sub(r"<[^>]+>", "", re.search(r"<h1[^>]*>(.*?)</h1>", (root / name).read_text(), re.S).group(1))
        word = max(re.findall(r"[A-Za-z]+", title), key=len)
        page, problems = _visit(browser, f"{base}/search.html?q={word}")
        try:
            page.wait_for_selector("#search-results ul.search li", timeout=20_000)
            hits = page.locator("#search-results ul.search li a").evaluate_all("as => as.map(a => a.href)")
            assert any(name in hit for hit in hits), f"searching {word!r} does not find {name}: {hits[:5]}"
            assert not problems, "\n".join(problems)
        finally:
            page.close()


def test_every_internal_link_resolves():
    """A link checker over the built HTML, offline: every local href and src names a file of the book, and every
    #fragment an id (or name) on the page it points to."""
    from html.parser import HTMLParser
    from urllib.parse import unquote, urlsplit

    class Links(HTMLParser):
        def __init__(self):
            super().__init__()
            self.ids: set[str] = set()
            self.links: list[str] = []

        def handle_starttag(self, tag, attrs):
            attrs = dict(attrs)
            for key in ("id", "name") if tag != "meta" else ():
                if attrs.get(key):
                    self.ids.add(attrs[key])
            for key in ("href", "src"):
                if attrs.get(key) and not (tag == "link" and attrs.get("rel") in ("canonical", "alternate")):
                    self.links.append(attrs[key])

    root = Path(HTML)
    parsed: dict[Path, Links] = {}

    def parse(path: Path) -> Links:
        if path not in parsed:
            parsed[path] = Links()
            parsed[path].feed(path.read_text(errors="replace"))
        return parsed[path]

    pages = sorted(p for p in root.rglob("*.html") if "_static" not in p.parts)
    broken: list[str] = []
    checked = 0
    for page in pages:
        for link in parse(page).links:
            parts = urlsplit(link)
            if parts.scheme or parts.netloc or link.startswith(("javascript:", "mailto:", "data:")):
                continue  # external: the launch and repository buttons, credits; not followed offline
            target = (page.parent / unquote(parts.path)).resolve() if parts.path else page
            if target.is_dir():
                target = target / "index.html"
            checked += 1
            if not target.is_file() or root.resolve() not in target.parents:
                broken.append(f"{page.relative_to(root)}: {link} (no such file)")
            elif parts.fragment and target.suffix == ".html" and unquote(parts.fragment) not in parse(target).ids:
                broken.append(f"{page.relative_to(root)}: {link} (no #{parts.fragment} there)")
    assert checked > 100, f"only {checked} internal links found"
    assert not broken, f"{len(broken)} broken links:\n" + "\n".join(broken[:40])


def _chapter_pages() -> dict[int, Path]:
    """The built chapter pages by the number in their file name (notebooks/kk_*.html, book/kk_*.html)."""
    import re

    root = Path(HTML)
    return {int(p.name[:2]): p for folder in ("notebooks", "book") for p in sorted((root / folder).glob("*.html"))
            if re.match(r"\d\d_", p.name)}


def test_the_book_numbers_each_chapter_as_its_file_and_every_link_says_the_right_number():
    """In the rendered book, chapter k's title reads "k. ..." (numbered across the parts), and a link whose text
    says "chapter N" (or is a bare number, as in the evaluation table) leads to chapter N's page."""
    import re
    from urllib.parse import unquote, urlsplit

    pages = _chapter_pages()
    assert sorted(pages) == list(range(1, len(pages) + 1)), f"chapter files not numbered 1..n: {sorted(pages)}"
    number_of = {}
    for k, page in pages.items():
        html = page.read_text()
        h1 = re.search(r"<h1[^>]*>(.*?)</h1>", html[html.find("<article"):], re.S).group(1)  # the page's own title
        shown = re.search(r'class="section-number">\s*(\d+)\.', h1)
        assert shown and int(shown.group(1)) == k, f"{page.name}: its title does not read '{k}.': {h1[:120]!r}"
        number_of[page.resolve()] = k
    anchors = re.compile(r'<a class="reference internal" href="([^"#]*)(?:#[^"]*)?"[^>]*>(.*?)</a>', re.S)
    wrong, seen = [], 0
    for page in [*pages.values(), *sorted(Path(HTML).glob("book/*.html"))]:
        for href, inner in anchors.findall(page.read_text()):
            text = re.sub(r"<[^>]+>", "", inner).strip()
            said = re.fullmatch(r"(?:[Cc]hapters? )?(\d+)", text)
            target = (page.parent / unquote(urlsplit(href).path)).resolve() if href else page.resolve()
            if said and target in number_of:
                seen += 1
                if int(said.group(1)) != number_of[target]:
                    wrong.append(f"{page.name}: '{text}' leads to chapter {number_of[target]}")
    assert seen > 20, f"only {seen} numbered links to chapters found"
    assert not wrong, "\n".join(wrong)
