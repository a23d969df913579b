"""Small fixes to the HTML the Jupyter Book 1.x stack writes, so pages load with no console error.

- sphinx-thebe registers its configuration script again when myst-nb re-reads the execution-report page,
  and the second copy fails ("Identifier 'THEBE_JS_URL' has already been declared"): keep one copy.
- pydata-sphinx-theme logs "invalid theme mode" when no default mode is set: default to light, which
  suits matplotlib's white figures.

And it hands the pages the addresses derived from the one place the repository's address is kept
(``repository.url`` in ``_config.yml``): the MyST substitutions ``{{ repository_url }}``, ``{{ book_url }}`` and
``{{ book_link }}`` (a link to the published book, GitHub Pages of that repository).
"""

from __future__ import annotations

from typing import Any


def addresses(repository: str) -> tuple[str, str]:
    """The published book's address and the repository's, from ``https://github.com/OWNER/NAME``."""
    prefix = "https://github.com/"
    owner, _, name = repository.removeprefix(prefix).rstrip("/").partition("/")
    if not repository.startswith(prefix) or not owner or not name or "/" in name:
        raise ValueError(f"repository.url in _config.yml must read {prefix}OWNER/NAME; got {repository!r}")
    return f"https://{owner}.github.io/{name}/", f"{prefix}{owner}/{name}"


def _default_mode(app: Any, config: Any) -> None:
    config.html_context.setdefault("default_mode", "light")


def _addresses(app: Any, config: Any) -> None:
    book, repository = addresses(config.html_theme_options["repository_url"])
    config.myst_substitutions = {**config.myst_substitutions, "repository_url": repository, "book_url": book,
                                 "book_link": f"[{book}]({book})"}


def _unique_scripts(app: Any, pagename: str, templatename: str, context: dict, doctree: Any) -> None:
    scripts = context.get("script_files")
    if not scripts:
        return
    seen, unique = set(), []
    for script in scripts:  # the copies differ in priority and attributes: compare file, or inline body
        attributes = getattr(script, "attributes", {})
        key = attributes.get("body") or str(getattr(script, "filename", script))
        if key not in seen:
            seen.add(key)
            unique.append(script)
    scripts[:] = unique


def setup(app: Any) -> dict[str, Any]:
    app.connect("config-inited", _default_mode)
    app.connect("config-inited", _addresses)
    app.connect("html-page-context", _unique_scripts, priority=999)  # after every handler that adds scripts
    return {"parallel_read_safe": True, "parallel_write_safe": True}
