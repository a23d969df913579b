"""Gatys et al.'s Figure 3 images: the reduced copies shipped with the package, their credits, and the path to
the full-size originals (downloaded and hash-checked; here from a local server on 127.0.0.1)."""

from __future__ import annotations

import http.server
import shutil
import threading
from functools import partial
from pathlib import Path

import pytest
import torch

from dgm_course.data import figure3
from dgm_course.data.download import HashMismatch

SHARED = Path(__file__).resolve().parents[2] / "shared" / "figure3"  # the originals, where the workplace has them


@pytest.mark.parametrize("name", list(figure3.IMAGES))
def test_each_shipped_copy_loads_as_an_image_with_its_credit(name):
    image = figure3.load(name)
    assert image.ndim == 3 and image.shape[0] == 3 and max(image.shape[1:]) == 512
    assert image.dtype == torch.float32 and 0 <= float(image.min()) and float(image.max()) <= 1
    assert image.std() > 0.05  # a picture, not a flat placeholder
    art = figure3.IMAGES[name]
    assert art.author.split(",")[0].split()[-1] in figure3.credit(name)
    assert (figure3.CONTENT, *figure3.STYLES) == tuple(figure3.IMAGES)
    with pytest.raises(ValueError, match="unknown image 'mona_lisa'; choose one of: tubingen"):
        figure3.load("mona_lisa")


@pytest.fixture
def originals(tmp_path, monkeypatch):
    """The originals served from 127.0.0.1 (the same bytes as the public copies), with an empty cache."""
    if not SHARED.exists():
        pytest.skip("the originals of Figure 3 are not beside this checkout (../shared/figure3)")
    root = tmp_path / "www"
    shutil.copytree(SHARED, root)

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), partial(Quiet, directory=str(root)))
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    monkeypatch.setattr(figure3, "_ORIGINALS", f"http://127.0.0.1:{httpd.server_address[1]}/")
    monkeypatch.setenv("DGM_DATA", str(tmp_path / "cache"))
    yield root
    httpd.shutdown()
    httpd.server_close()


def test_the_full_size_originals_download_with_their_recorded_hashes(originals):
    full = figure3.load("tubingen", full=True)
    assert tuple(full.shape) == (3, 768, 1024)  # the published size
    small = figure3.load("tubingen")
    shrunk = torch.nn.functional.interpolate(full[None], size=small.shape[1:], mode="area")[0]
    assert float((shrunk - small).abs().mean()) < 0.03  # the shipped copy is this image, reduced
    (originals / "shipwreck.jpg").write_bytes((originals / "the_scream.jpg").read_bytes())  # a server that lies
    with pytest.raises(HashMismatch):
        figure3.load("shipwreck", full=True)
