"""The committed notebooks: stripped, with the generated install cell, and checked cells that carry the
output nbval must see."""

import subprocess
import sys
import tomllib
from pathlib import Path

import nbformat
import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
sys.path.insert(0, str(ROOT / "scripts"))
import notebooks as tool  # noqa: E402


def test_there_are_notebooks_and_each_is_in_the_toc():
    toc = (ROOT / "_toc.yml").read_text()
    assert NOTEBOOKS
    for path in NOTEBOOKS:
        assert f"notebooks/{path.stem}" in toc, f"{path.name} is not in _toc.yml"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_is_stripped_and_starts_by_installing_the_package(path):
    nb = nbformat.read(path, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(not c.outputs and c.execution_count is None for c in code), "strip outputs: scripts/notebooks.py fix"
    assert code[0].source == tool.install_cell_source()
    checked = [c for c in code if c.source.lstrip().startswith(tool.MARK)]
    assert checked, "a chapter has at least one sanity cell marked # NBVAL_CHECK_OUTPUT"
    assert all("nbval" in c.metadata for c in checked), "record expected outputs: scripts/notebooks.py record"


def test_repository_address_is_kept_in_one_place():
    config_url = yaml.safe_load((ROOT / "_config.yml").read_text())["repository"]["url"]
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["urls"]["Repository"] == config_url
    assert config_url in tool.install_cell_source()


def test_notebooks_check_command_agrees():
    result = subprocess.run([sys.executable, str(ROOT / "scripts" / "notebooks.py"), "check"], capture_output=True,
                            text=True)
    assert result.returncode == 0, result.stdout + result.stderr
