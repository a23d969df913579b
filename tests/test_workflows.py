"""The workflow that publishes the book: linted by actionlint (with shellcheck on its shell steps), building the
book exactly as the README says, and the book's address derived from the repository address kept in _config.yml."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))
sys.path.insert(0, str(ROOT / "book" / "_ext"))
from dgm_book import addresses  # noqa: E402

REPOSITORY = yaml.safe_load((ROOT / "_config.yml").read_text())["repository"]["url"]


def _tool(name: str) -> str:
    found = shutil.which(name, path=os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]))
    assert found, f"{name} is not installed: it comes with the test extras (pip install -e '.[test]')"
    return found


def test_the_workflows_lint_clean_with_their_shell_steps_checked():
    assert WORKFLOWS, "no workflow under .github/workflows"
    shellcheck = Path(_tool("shellcheck")).parent
    env = {**os.environ, "PATH": os.pathsep.join([str(shellcheck), os.environ.get("PATH", "")])}
    run = subprocess.run([_tool("actionlint"), "-verbose", *map(str, WORKFLOWS)], capture_output=True, text=True,
                         cwd=ROOT, env=env)
    assert run.returncode == 0, run.stdout + run.stderr
    assert 'Rule "shellcheck" was disabled' not in run.stderr, "actionlint ran without shellcheck"


def test_the_book_workflow_builds_as_the_readme_does_and_publishes_that_build():
    workflow = yaml.safe_load((ROOT / ".github" / "workflows" / "book.yml").read_text())
    triggers = workflow[True]  # YAML reads the key `on` as True
    assert triggers["push"]["branches"] == ["main"]
    build = workflow["jobs"]["build"]
    assert build["container"] == "debian:12", "the README's commands are tested on Debian 12"
    runs = [step.get("run", "") for step in build["steps"]]
    assert "scripts/book.sh" in runs, "the build step is the README's command, as it is"
    assert "scripts/book.sh" in (ROOT / "README.md").read_text()
    upload = next(s for s in build["steps"] if s.get("uses", "").startswith("actions/upload-pages-artifact"))
    define = next(line for line in (ROOT / "scripts" / "setup.sh").read_text().splitlines()
                  if line.startswith("book_out()"))  # where scripts/book.sh writes the book
    out = subprocess.run(["bash", "-c", f"{define}\nDGM_SEED=0 book_out book"], capture_output=True, text=True)
    assert upload["with"]["path"] == f"{out.stdout.strip()}/_build/html", "it publishes what scripts/book.sh built"
    assert "actions/deploy-pages" in str(workflow["jobs"]["deploy"]["steps"])


def test_the_book_address_is_derived_from_the_repository_address():
    book, repository = addresses(REPOSITORY)
    assert repository == REPOSITORY
    owner, name = REPOSITORY.removeprefix("https://github.com/").split("/")
    assert book == f"https://{owner}.github.io/{name}/"
    readme = (ROOT / "README.md").read_text()
    assert book in readme, "the README gives the book's address"
    assert f"{REPOSITORY}/actions/workflows/book.yml/badge.svg" in readme, "the README shows the workflow's badge"
    assert "{{ book_link }}" in (ROOT / "book" / "intro.md").read_text(), "the intro links the published book"
