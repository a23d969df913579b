"""Small fixes to the HTML the Jupyter Book 1.x stack writes, so pages load with no console error.

- sphinx-thebe registers its configuration script again when myst-nb re-reads the execution-report page,
  and the second copy fails ("Identifier 'THEBE_JS_URL' has already been declared"): keep one copy.
- pydata-sphinx-theme logs "invalid theme mode" when no default mode is set: default to light, which
  suits matplotlib's white figures.
"""

from __future__ import annotations

from typing import Any


def _default_mode(app: Any, config: Any) -> None:
    config.html_context.setdefault("default_mode", "light")


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
    app.connect("html-page-context", _unique_scripts, priority=999)  # after every handler that adds scripts
    return {"parallel_read_safe": True, "parallel_write_safe": True}
