"""The README's way to run the notebooks locally: `.venv/bin/jupyter lab notebooks/` starts a server that serves
them."""

from __future__ import annotations

import json
import os
import secrets
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_jupyter_lab_serves_the_notebooks(tmp_path):
    jupyter = Path(sys.executable).parent / "jupyter"  # the environment's own command, as the README gives it
    port, token = _free_port(), secrets.token_hex(16)
    log = (tmp_path / "jupyter.log").open("w")  # a file, not a pipe nobody reads while the server runs
    server = subprocess.Popen(
        [str(jupyter), "lab", "notebooks/", "--no-browser", "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}",
         f"--IdentityProvider.token={token}", "--ServerApp.port_retries=0"]
        + (["--allow-root"] if os.geteuid() == 0 else []),  # as the README says for root (CI, containers)
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=log, env={"HOME": str(tmp_path), "PATH": str(jupyter.parent)},
    )
    try:
        listing = None
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and server.poll() is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/contents?token={token}", timeout=5) as r:
                    listing = json.load(r)
                break
            except (urllib.error.URLError, ConnectionError):
                time.sleep(0.5)
        assert listing is not None, f"JupyterLab did not answer: {(tmp_path / 'jupyter.log').read_text()[-2000:]}"
        names = {item["name"] for item in listing["content"]}
        assert {p.name for p in (ROOT / "notebooks").glob("*.ipynb")} <= names
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/lab?token={token}", timeout=10) as r:
            assert r.status == 200 and b"JupyterLab" in r.read()
        with urllib.request.urlopen(
                f"http://127.0.0.1:{port}/api/contents/01_unsupervised_learning.ipynb?token={token}", timeout=10) as r:
            assert json.load(r)["content"]["cells"][0]["cell_type"] == "markdown"
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()
