"""Every way in: the course as Colab meets it, in a fresh environment that has torch and torchvision but not
dgm_course.

One virtual environment serves the module: torch 2.14.1 and torchvision 0.29.1 (Colab has both) and ipykernel,
nothing of the course. In it:

- chapter 1's first cell installs the package from its repository (the address pointed at this checkout,
  ``git+file://``), and the rest of chapter 1 runs in that environment's kernel at the smoke budget;
- with the offline sources absent, every data set loads through its online path's code, served from 127.0.0.1;
- VGG-19's ImageNet weights are taken from torchvision's cache when they are there, with no network.

pip installs the package from the checkout's committed HEAD, as Colab would from the repository. The module takes
a few minutes and about 6 GB of disk; ``DGM_SKIP_COLAB=1`` skips it on a machine that cannot spare them (CI runs
it).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
from notebooks import INSTALL_HEADER, repository_url  # noqa: E402

pytestmark = [pytest.mark.slow,  # builds a Python environment of several GB
              pytest.mark.skipif(os.environ.get("DGM_SKIP_COLAB") == "1", reason="DGM_SKIP_COLAB=1")]
TORCH = ("torch==2.14.1", "torchvision==0.29.1")  # what Colab has; both on this project's machines' disks
SHARED = ROOT.parent / "shared" / "figure3"  # Figure 3's originals, where the workplace has them


def _run(*args: str, **kwargs) -> str:
    done = subprocess.run(args, capture_output=True, text=True, **kwargs)
    assert done.returncode == 0, (f"{' '.join(args)} failed ({done.returncode}):\n"
                                  f"{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    return done.stdout


@pytest.fixture(scope="module")
def colab(tmp_path_factory):
    """A fresh environment as Colab's: torch, torchvision and a kernel; then chapter 1, run there, installs the
    course through its first cell. Returns the environment's python, the executed notebook and its folder."""
    home = tmp_path_factory.mktemp("colab")
    venv = home / "venv"
    _run(sys.executable, "-m", "venv", str(venv))
    python = str(venv / "bin" / "python")
    _run(python, "-m", "pip", "install", "--quiet", "--upgrade", "pip")  # Colab's is recent; venv's 23.2 cannot
    _run(python, "-m", "pip", "install", "--quiet", *TORCH, "ipykernel")  # read "name @ git+file://..."
    absent = subprocess.run([python, "-c", "import dgm_course"], capture_output=True, cwd=home)
    assert absent.returncode != 0, "the fresh environment already has dgm_course"

    kernels = home / "jupyter" / "kernels" / "colab"
    kernels.mkdir(parents=True)
    (kernels / "kernel.json").write_text(json.dumps({
        "argv": [python, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Colab-like", "language": "python"}))

    nb = nbformat.read(ROOT / "notebooks" / "01_unsupervised_learning.ipynb", as_version=4)
    first = next(c for c in nb.cells if c.cell_type == "code")
    assert first.source.startswith(INSTALL_HEADER) and f"git+{repository_url()}" in first.source
    first.source = first.source.replace(f"git+{repository_url()}", f"git+file://{ROOT}")
    nb.cells.append(nbformat.v4.new_code_cell("import dgm_course, sys; print(repr((dgm_course.__file__, sys.prefix)))"))

    from nbclient import NotebookClient

    work = home / "work"  # not the checkout: nothing of it is importable from here
    work.mkdir()
    env = {"JUPYTER_PATH": str(home / "jupyter"), "DGM_BUDGET": "smoke", "DGM_PROGRESS": "0", "MPLBACKEND": "agg",
           "DGM_DATA": str(home / "cache"), "HOME": str(home)}
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        NotebookClient(nb, timeout=900, kernel_name="colab", resources={"metadata": {"path": str(work)}}).execute()
    finally:
        for k, v in saved.items():
            os.environ.pop(k) if v is None else os.environ.__setitem__(k, v)
    return python, nb, home


def test_the_first_cell_installs_the_course_and_chapter_1_runs(colab):
    python, nb, home = colab
    import ast

    text = "".join(o.get("text", "") for o in nb.cells[-1].outputs if o.get("name") == "stdout")
    where, prefix = ast.literal_eval(text.strip().splitlines()[-1])
    assert where.startswith(prefix) and "site-packages" in where, f"dgm_course imported from {where}, not the venv"
    shown = json.loads(_run(python, "-m", "pip", "inspect"))
    installed = {p["metadata"]["name"]: p for p in shown["installed"]}
    assert installed["dgm-course"]["direct_url"]["url"] == f"file://{ROOT}", "not installed from the repository"
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []) if o.output_type == "error"]
    assert not errors


def test_every_data_set_loads_through_its_online_path(colab, tmp_path):
    """No Debian package, no cache: Fashion-MNIST and MNIST come through torchvision's downloader and Figure 3's
    originals through data.download.fetch, all from a server on 127.0.0.1; the rest ship inside the wheels."""
    python, _, _ = colab
    www = tmp_path / "www"
    www.mkdir()
    fashion = Path("/usr/share/datasets/fashion-mnist")  # served when there (scripts/setup.sh installs it)
    fashion_n = (60000, 10000) if fashion.exists() else (10, 10)
    script = textwrap.dedent(f"""
        import gzip, hashlib, http.server, shutil, threading
        from functools import partial
        from pathlib import Path

        import numpy as np
        from torchvision import datasets

        from dgm_course.data import figure3, images

        www = Path({str(www)!r})
        fashion = Path({str(fashion)!r})
        for name, source in (("fashion-mnist", fashion if fashion.exists() else None), ("mnist", None)):
            (www / name).mkdir()
            for f in [f for pair in images.IDX_FILES.values() for f in pair]:
                if source is not None:
                    shutil.copy(source / f, www / name / f)
                else:  # no copy here: a small pair of IDX files in the format
                    n, images_ = 10, "images" in f
                    head = bytes([0, 0, 8, 3 if images_ else 1]) + n.to_bytes(4, "big")
                    body = (head + (28).to_bytes(4, "big") * 2 + bytes(range(256)) * 30 + bytes(n * 784 - 7680)
                            if images_ else head + bytes(range(n)))
                    (www / name / f).write_bytes(gzip.compress(body))
        shared = Path({str(SHARED)!r})
        if shared.exists():
            shutil.copytree(shared, www / "figure3")

        class Quiet(http.server.SimpleHTTPRequestHandler):
            def log_message(self, *args):
                pass

        httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), partial(Quiet, directory=str(www)))
        threading.Thread(target=httpd.serve_forever, daemon=True).start()
        url = f"http://127.0.0.1:{{httpd.server_address[1]}}/"
        images.DEBIAN_DIR = www / "no-debian-package"
        md5 = lambda p: hashlib.md5(p.read_bytes()).hexdigest()
        for cls, name in ((datasets.FashionMNIST, "fashion-mnist"), (datasets.MNIST, "mnist")):
            cls.mirrors = [url + name + "/"]  # torchvision's own download code, pointed at this server
            cls.resources = [(f, md5(www / name / f)) for pair in images.IDX_FILES.values() for f in pair]
        for name, n in (("fashion-mnist", {fashion_n[0]}), ("mnist", 10)):
            data = images.load(name, "train")
            assert len(data) == n and "torchvision" in data.source, data
            assert tuple(data.images.shape[1:]) == (1, 28, 28) and float(data.images.max()) <= 1
        assert len(images.load("fashion-mnist", "test")) == {fashion_n[1]}
        assert len(images.load("digits", "test")) == images.DIGITS_TEST
        for name in images.PHOTOS + images.TEXTURES:
            assert images.photo(name).shape[0] == 3, name
        for name in figure3.IMAGES:
            assert max(figure3.load(name).shape[1:]) == 512
        if shared.exists():
            figure3._ORIGINALS = url + "figure3/"
            assert tuple(figure3.load("tubingen", full=True).shape) == (3, 768, 1024)
        print("every data set loaded", "with" if shared.exists() else "without", "Figure 3's originals")
    """)
    env = {**os.environ, "DGM_DATA": str(tmp_path / "cache"), "HOME": str(tmp_path)}
    assert "every data set loaded" in _run(python, "-c", script, env=env, cwd=tmp_path)


def test_vgg19_takes_the_imagenet_weights_from_torchvisions_cache(colab, tmp_path):
    """With VGG-19's ImageNet file where torchvision's cache keeps it (here a random state dict of the right
    shapes), the style chapter's loader uses it, says so, and needs no network; without it, it falls back."""
    python, _, _ = colab
    script = textwrap.dedent("""
        import os, sys
        from pathlib import Path

        import torch
        from torchvision.models import VGG19_Weights, vgg19 as tv_vgg19

        from dgm_course.applications import style

        torch.manual_seed(3)
        model, source = style.vgg19("auto")
        assert "random" in source and "not available" in source, source
        cache = Path(torch.hub.get_dir()) / "checkpoints"
        cache.mkdir(parents=True, exist_ok=True)
        weights = tv_vgg19().state_dict()  # random, the right shapes
        torch.save(weights, cache / Path(VGG19_Weights.IMAGENET1K_V1.url).name)
        for asked in ("auto", "imagenet"):
            model, source = style.vgg19(asked)
            assert source == "VGG-19 with ImageNet weights (torchvision)", source
            for k, v in model.features.state_dict().items():
                assert torch.equal(v, weights["features." + k]), k
        print(source)
    """)
    proxy = "http://127.0.0.1:9"  # nothing listens there: any download fails at once
    env = {**os.environ, "TORCH_HOME": str(tmp_path / "torch"), "HOME": str(tmp_path), "HTTP_PROXY": proxy,
           "HTTPS_PROXY": proxy, "http_proxy": proxy, "https_proxy": proxy}
    assert "ImageNet weights" in _run(python, "-c", script, env=env, cwd=tmp_path)
