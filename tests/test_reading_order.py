"""The book reads front to back as a course.

- Chapter k of the book (its numbered parts, in ``_toc.yml`` order) is the file ``kk_*`` (a notebook, or a page of
  ``book/`` for a chapter without code), so the number a reader sees in the book, in JupyterLab and in Colab is the
  same.
- Another chapter is cited by a link Sphinx resolves (``[chapter 7](07_diffusion_models.ipynb)``, ``{doc}``), never
  by a typed number: a number in a link's text is the linked chapter's, a "chapter N" outside a link fails, and a
  link to a chapter still ahead says that it is one ("we return to this in ...").
- Every chapter closes with a summary that quotes its measured numbers (glued) and says where it leads, and keeps
  its build logistics in one collapsed note, "Reproducing this chapter", above its sanity cell.
- No wall of prose: at most 500 words between two code cells (display maths and the collapsed note not counted).
- No string in the code holds a control character other than a newline: "\\theta" in a label that is not a raw
  string renders as a tab and "heta".
"""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
TOC = yaml.safe_load((ROOT / "_toc.yml").read_text())
CHAPTERS = [ROOT / (c["file"] + (".ipynb" if c["file"].startswith("notebooks/") else ".md"))
            for part in TOC["parts"] if part.get("numbered") for c in part["chapters"]]
NUMBER = {path.resolve(): k for k, path in enumerate(CHAPTERS, start=1)}
PAGES = sorted((ROOT / "book").glob("*.md"))
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))

LINK = re.compile(r"\[((?:[^\[\]]|\[[^\]]*\])*)\]\(([^)\s]+)\)")   # [text](target), text may hold [..]
ROLE = re.compile(r"\{(?:doc|numref|ref)\}`([^`]*)`")
TYPED = re.compile(r"(?<!-)\b[Cc]hapters?\s+\d+")  # not the flag --chapters
FORWARD = re.compile(r"\b(ahead|later|will|return|returns|come|comes|coming|next|forward|to come|meet|meets|"
                     r"goes on|takes up|picks up)\b", re.I)
OWN_WORDS_LIMIT = 500


def _cells(path: Path) -> list[dict]:
    return json.loads(path.read_text())["cells"]


def _markdown(path: Path) -> list[str]:
    """The prose of a chapter or page: its markdown cells, or the page."""
    if path.suffix == ".md":
        return [path.read_text()]
    return ["".join(c["source"]) for c in _cells(path) if c["cell_type"] == "markdown"]


def _target(source: Path, href: str) -> Path | None:
    """The chapter file a link points to, or None when it points elsewhere."""
    if "://" in href or href.startswith(("#", "mailto:")):
        return None
    file = href.split("#", 1)[0]
    resolved = (source.parent / file).resolve()
    if resolved.suffix == "" and (resolved.with_suffix(".ipynb")).exists():
        resolved = resolved.with_suffix(".ipynb")
    return resolved if resolved in NUMBER else None


def _links(source: Path, text: str):
    """(start, end, link text, chapter number or None) of every link and {doc} role of ``text``."""
    for m in LINK.finditer(text):
        target = _target(source, m.group(2))
        yield m.start(), m.end(), m.group(1), NUMBER.get(target) if target else None
    for m in ROLE.finditer(text):
        inner = m.group(1)
        label, _, href = inner.rpartition("<") if inner.endswith(">") else ("", "", inner)
        target = _target(source, href.rstrip(">"))
        yield m.start(), m.end(), label, NUMBER.get(target) if target else None


def _sentence(text: str, start: int, end: int) -> str:
    left = max(text.rfind(". ", 0, start), text.rfind("\n\n", 0, start), text.rfind(": ", 0, start))
    rights = [i for i in (text.find(". ", end), text.find("\n\n", end)) if i != -1]
    return text[left + 1:min(rights) if rights else len(text)]


def test_the_numbered_chapters_are_the_files_in_reading_order():
    assert len(CHAPTERS) >= 14
    for k, path in enumerate(CHAPTERS, start=1):
        assert path.exists(), f"_toc.yml names {path.relative_to(ROOT)}, which does not exist"
        assert path.name.startswith(f"{k:02d}_"), f"the book's chapter {k} is {path.name}: rename it {k:02d}_..."
    numbered = [part.get("numbered", False) for part in TOC["parts"]]
    assert numbered == sorted(numbered, reverse=True), "the numbered parts come first, the reference pages last"
    for path in NOTEBOOKS:
        assert path.resolve() in NUMBER, f"{path.name} is not a numbered chapter of _toc.yml"


def _prose_sources() -> list[Path]:
    return [*NOTEBOOKS, *PAGES]


@pytest.mark.parametrize("source", _prose_sources(), ids=lambda p: p.name)
def test_every_chapter_reference_is_a_link_with_its_number(source):
    own = NUMBER.get(source.resolve())
    problems = []
    for text in _markdown(source):
        spans = []
        for start, end, label, number in _links(source, text):
            spans.append((start, end))
            if number is None:
                continue
            for n in map(int, re.findall(r"\b\d+\b", label)):
                if n != number:
                    problems.append(f"the link {text[start:end]!r} says {n} but leads to chapter {number}")
            if own is not None and number > own and not FORWARD.search(_sentence(text, start, end)):
                problems.append(f"a reference ahead, to chapter {number}, that does not say so (e.g. 'we return to "
                                f"this in ...'): {_sentence(text, start, end).strip()!r}")
        for m in TYPED.finditer(text):
            if not any(a <= m.start() < b for a, b in spans):
                problems.append(f"a typed chapter number, {m.group(0)!r}: write it as a link to the chapter")
    assert not problems, "\n".join(problems)


def _code_files() -> list[tuple[str, str]]:
    files = [(str(p.relative_to(ROOT)), p.read_text()) for folder in ("dgm_course", "benchmarks", "scripts")
             for p in sorted((ROOT / folder).rglob("*.py"))]
    for path in NOTEBOOKS:
        for i, cell in enumerate(_cells(path)):
            if cell["cell_type"] == "code":
                files.append((f"{path.name} cell {i}", "".join(cell["source"])))
    return files


def test_no_chapter_number_is_typed_in_code():
    """Code cannot link: it names a chapter by its subject (``the VAE chapter``), which no reordering changes."""
    found = [f"{where}: {m.group(0)!r}" for where, text in _code_files() for m in TYPED.finditer(text)]
    assert not found, "\n".join(found)


def _chapter_notebooks() -> list[Path]:
    return [p for p in CHAPTERS if p.suffix == ".ipynb"]


def _headings(cells: list[dict]) -> list[tuple[int, str]]:
    return [(i, line[3:].strip()) for i, c in enumerate(cells) if c["cell_type"] == "markdown"
            for line in "".join(c["source"]).splitlines() if line.startswith("## ")]


@pytest.mark.parametrize("path", _chapter_notebooks(), ids=lambda p: p.name)
def test_every_chapter_closes_with_a_summary_and_a_note_on_reproducing_it(path):
    cells = _cells(path)
    headings = dict((title, i) for i, title in _headings(cells))
    assert "Summary" in headings, f"{path.name} has no '## Summary' section"
    assert "Exercises" in headings and headings["Summary"] < headings["Exercises"], "the summary comes first"
    summary = "".join("".join(c["source"]) for c in cells[headings["Summary"]:headings["Exercises"]]
                      if c["cell_type"] == "markdown")
    assert "{glue:" in summary, "the summary quotes the chapter's measured numbers, glued"
    k = NUMBER[path.resolve()]
    if k < len(CHAPTERS):
        assert any(number == k + 1 for *_, number in _links(path, summary)), \
            "the summary says where the course goes next: a link to the next chapter"
    notes = [i for i, c in enumerate(cells) if c["cell_type"] == "markdown"
             and re.search(r":::\{admonition\} Reproducing this chapter\n:class: dropdown", "".join(c["source"]))]
    assert len(notes) == 1, "one collapsed note 'Reproducing this chapter' (an admonition of class dropdown)"
    note = "".join(cells[notes[0]]["source"])
    for key in ("repro_budget", "repro_seed", "repro_seconds", "repro_claims"):
        assert key in note, f"the note quotes {key} (glued by check_claims)"
    sanity = [i for i, c in enumerate(cells) if c["cell_type"] == "code" and "check_claims(" in "".join(c["source"])]
    assert len(sanity) == 1 and notes[0] < sanity[0] < headings["Exercises"], \
        "the note stands above the sanity cell, both after the summary and before the exercises"
    assert f'check_claims("{path.stem}"' in "".join(cells[sanity[0]]["source"]), "check_claims names its chapter"


def _words(markdown: str) -> int:
    text = re.sub(r"\$\$.*?\$\$", " ", markdown, flags=re.S)                 # display maths
    text = re.sub(r":::\{admonition\} Reproducing this chapter.*?\n:::", " ", text, flags=re.S)
    text = re.sub(r"```.*?```", " ", text, flags=re.S)                          # code shown, not prose
    return len(text.split())


@pytest.mark.parametrize("path", _chapter_notebooks(), ids=lambda p: p.name)
def test_no_wall_of_prose_between_code_cells(path):
    walls, run, first = [], 0, None
    for i, cell in enumerate(_cells(path)):
        if cell["cell_type"] == "code":
            if run >= OWN_WORDS_LIMIT:
                walls.append(f"cells {first}-{i - 1}: {run} words")
            run, first = 0, None
            continue
        source = "".join(cell["source"])
        if source.lstrip().startswith("## Exercises"):
            break
        run += _words(source)
        first = i if first is None else first
    assert not walls, f"break these with the computation or figure they describe: {walls}"


def _strings(text: str):
    try:
        tree = ast.parse(re.sub(r"^\s*[%!].*$", "", text, flags=re.M))  # IPython magics are not Python
    except SyntaxError:
        return
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            yield node.lineno, node.value


def test_no_string_in_the_code_holds_a_control_character():
    bad = [f"{where}, line {line}: {value!r}" for where, text in _code_files() for line, value in _strings(text)
           if re.search(r"[\x00-\x09\x0b-\x1f\x7f]", value)]
    assert not bad, "write these as raw strings (r'$\\theta$') or escape the backslash:\n" + "\n".join(bad)


def test_the_readme_lists_the_chapters_in_reading_order():
    rows = re.findall(r"^\| (\d+) \| [^|]+ \| `?([^|`]+?)`? \|", (ROOT / "README.md").read_text(), flags=re.M)
    assert [(int(k), name) for k, name in rows] == [(k, str(p.relative_to(ROOT))) for k, p in enumerate(CHAPTERS, 1)]


def test_every_table_row_names_its_chapter_notebook():
    from dgm_course.compare import CONTENDERS

    for c in CONTENDERS.values():
        assert (ROOT / "notebooks" / f"{c.chapter}.ipynb").exists(), f"{c.name}: no notebook {c.chapter}"
