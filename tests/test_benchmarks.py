"""The benchmark scripts run end to end (at their smoke sizes), print their tables and write them as JSON
(``--json``), which the tests read; and the one table writer they share (benchmarks/_table.py)."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from dgm_course.data import images, toy2d

ROOT = Path(__file__).resolve().parent.parent
LN32 = math.log(32)  # the checkerboard's entropy, the floor of its NLL

slow = pytest.mark.slow  # a test that runs a benchmark script


def benchmark(name: str, *args: str, tmp_path: Path, codes: tuple[int, ...] = (0,),
              timeout: int = 600) -> tuple[str, dict]:
    """Run benchmarks/<name>.py with ``args`` and ``--json``; return what it printed and the JSON it wrote."""
    out = tmp_path / "x.json"
    env = {**os.environ, "DGM_PROGRESS": "0"}
    run = subprocess.run([sys.executable, str(ROOT / "benchmarks" / f"{name}.py"), *args, "--json", str(out)],
                         capture_output=True, text=True, env=env, timeout=timeout, check=False)
    assert run.returncode in codes, run.stdout + run.stderr
    report = json.loads(out.read_text())
    assert report["script"] == name
    for table in report["tables"]:  # each table also printed, as a Markdown table with its header line
        headers = list(report["columns"][table].values())
        assert any(line.startswith("| ") and all(h in line for h in headers) for line in run.stdout.splitlines()), \
            (table, run.stdout)
    return run.stdout, report


def by_model(records: list[dict], key: str = "model") -> dict[str, dict]:
    return {r[key]: r for r in records}


def _table_module():
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        import _table
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
    return _table


def test_the_table_writer_prints_markdown_and_writes_typed_json(tmp_path, capsys):
    """benchmarks/_table.py: the Markdown table is rendered from the records the JSON holds; NaN and infinities
    are written as null, per-seed values as lists, a value and its standard error as two numbers."""
    t = _table_module()
    report = t.Report("demo", seeds=[0, 1], smoke=True)
    records = [dict(model="a", steps=20, nll=[3.5, float("nan")], se=[0.01, 0.02], worst=3.5, worst_se=0.01,
                    met=True, note=None),
               dict(model="b (long name)", steps=1000, nll=[3.25, 3.75], se=[0.125, 0.5], worst=float("inf"),
                    worst_se=0.5, met=False, note="text")]
    report.table("models", [
        t.Column("model", "model"), t.Column("steps", "steps", ","), t.Column("NLL per seed", "nll", ".3f", se="se"),
        t.Column("worst", "worst", ".2f", se="worst_se"), t.Column("met", "met"), t.Column("note", "note"),
        t.Column("both", None, lambda r: f"{r['model']}:{r['steps']}"),
    ], records)
    assert report.target("b below 4 nats", 3.75 < 4, worst=3.75) is True
    printed = capsys.readouterr().out.splitlines()
    cells = [[c.strip() for c in line.split("|")[1:-1]] for line in printed]
    assert cells[0] == ["model", "steps", "NLL per seed", "worst", "met", "note", "both"]
    assert set(printed[1]) == {"|", "-"} and len({len(line) for line in printed}) == 1  # padded columns
    assert cells[2:] == [["a", "20", "3.500 ± 0.010 / nan ± 0.020", "3.50 ± 0.01", "yes", "-", "a:20"],
                         ["b (long name)", "1,000", "3.250 ± 0.125 / 3.750 ± 0.500", "inf ± 0.50", "NO", "text",
                          "b (long name):1000"]]

    path = tmp_path / "sub" / "x.json"
    report.write(path)
    back = json.loads(path.read_text())
    assert list(back) == ["script", "seeds", "smoke", "tables", "columns", "targets"]
    assert back["script"] == "demo" and back["seeds"] == [0, 1] and back["smoke"] is True
    assert back["columns"]["models"] == {"model": "model", "steps": "steps", "nll": "NLL per seed", "worst": "worst",
                                         "met": "met", "note": "note"}
    a, b = back["tables"]["models"]
    assert a == dict(records[0], nll=[3.5, None])  # NaN -> null, the rest as it was
    assert b == dict(records[1], worst=None)  # infinity -> null
    assert back["targets"] == [{"target": "b below 4 nats", "met": True, "worst": 3.75}]
    with pytest.raises(TypeError, match="a benchmark record holds a"):
        t.plain({"x": object()})
    assert t.plain({"t": torch.tensor(2.5), "n": (1, torch.tensor(float("nan")))}) == {"t": 2.5, "n": [1, None]}
    t.Report("empty").write(None)  # no --json: nothing written


@slow
def test_flows_benchmark(tmp_path) -> None:
    _, report = benchmark("flows", "--smoke", tmp_path=tmp_path)
    rows = by_model(report["tables"]["models"])
    assert list(rows) == ["RealNVP (dgm_course)", "RealNVP (zuko)", "spline flow (dgm_course)"]
    ours = [r for name, r in rows.items() if "(dgm_course)" in name]
    assert all(len(r["nll"]) == 3 and len(r["se"]) == 3 for r in ours)  # three seeds each
    assert [r["worst_nll"] for r in ours] == [max(r["nll"]) for r in ours]  # the seed the target is judged on
    assert [r["worst_se"] for r in ours] == [r["se"][r["nll"].index(max(r["nll"]))] for r in ours]
    assert all(r["worst_nll"] > LN32 - 0.1 for r in ours)  # never (much) below the entropy ln 32
    assert report["entropy"] == pytest.approx(LN32)
    targets = report["targets"]
    assert len(targets) == 3 and all(isinstance(t["met"], bool) for t in targets)
    assert targets[0]["worst_nll"] == rows["RealNVP (dgm_course)"]["worst_nll"]
    assert targets[2]["nll_zuko"] == rows["RealNVP (zuko)"]["nll"] and targets[2]["step_ratio"] > 0


@slow
def test_cnf_benchmark(tmp_path) -> None:
    _, report = benchmark("cnf", "--smoke", tmp_path=tmp_path)
    rows = by_model(report["tables"]["models"])
    likelihood = [r for name, r in rows.items() if any(m in name for m in ("ML-CNF", "OT-Flow", "flow matching"))]
    assert len(likelihood) == 8 == len(rows)
    assert any("FFJORD's solver" in name for name in rows) and any("weights x20" in name for name in rows)
    assert all(r["worst_nll"] == max(v for v in r["nll"] if v is not None) for r in likelihood)
    assert all(r["worst_nll"] > LN32 - 0.1 for r in likelihood)  # never (much) below the entropy ln 32
    headers = report["columns"]["models"].values()
    assert any("s to reach" in h for h in headers) and any("sampling (no log-det)" in h for h in headers)
    zuko = list(by_model(report["tables"]["zuko"]))  # ours twice, then zuko's
    assert zuko[0].startswith("CNF (dgm_course, backprop") and zuko[1] == "CNF (dgm_course, continuous adjoint)"
    assert len(zuko) == 3 and zuko[2].startswith("CNF (zuko ")
    assert len(report["targets"]) == 4 and all(len(t[k]) == 1 for t in report["targets"] for k in t
                                               if k not in ("target", "met"))  # one value per seed


NEEDS_FASHION = pytest.mark.skipif(
    not (images.DEBIAN_DIR / "fashion-mnist" / "t10k-images-idx3-ubyte.gz").exists(),
    reason="reads Fashion-MNIST from the Debian package dataset-fashion-mnist, not installed (scripts/setup.sh "
           "installs it)")  # the VAE benchmark is pointed at that folder; the autoregressive one reads it first


def test_the_logit_transform_and_its_log_determinant():
    """benchmarks/diffusion.py's RealNVP preprocessing: its log-determinant is log |det dy/dx| by autograd."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        from diffusion import ALPHA, to_logit
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
    x = torch.rand(4, 5, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    y, log_det = to_logit(x)
    for row, value in zip(x, log_det):
        jacobian = torch.autograd.functional.jacobian(lambda v: to_logit(v[None])[0][0], row)
        assert float(value) == pytest.approx(float(torch.linalg.slogdet(jacobian)[1]), abs=1e-12)
    assert torch.allclose((torch.sigmoid(y) - ALPHA) / (1 - 2 * ALPHA), x)  # the inverse the samples go through


@slow
@NEEDS_FASHION
def test_vae_benchmark(tmp_path) -> None:
    """The smoke run, with Fashion-MNIST's files standing in for MNIST's so that the MNIST path runs too."""
    _, report = benchmark("vae", "--smoke", "--mnist-root", "/usr/share/datasets/fashion-mnist", tmp_path=tmp_path)
    rows = report["tables"]["vae"]
    assert [r["model"].split(",")[0] for r in rows] == ["digits", "Fashion-MNIST", "MNIST (IDX files in "
                                                        "/usr/share/datasets/fashion-mnist)"]
    for r in rows:
        assert r["nll"] <= -r["elbo"] + 1.0, r  # the IWAE bound is at least the ELBO (up to Monte Carlo noise)
    digits, fashion, mnist = rows  # bits per dimension: binary pixels, and Fashion-MNIST's 256 grey levels
    assert digits["bits"] == pytest.approx(digits["nll"] / (64 * math.log(2)))
    assert fashion["bits"] == pytest.approx((fashion["nll"] + 784 * math.log(256)) / (784 * math.log(2)))
    assert mnist["bits"] == pytest.approx(mnist["nll"] / (784 * math.log(2)))
    assert report["burda_nll"] == 86.76


@slow
def test_gan_benchmark(tmp_path) -> None:
    stdout, report = benchmark("gan", "--smoke", tmp_path=tmp_path)
    rows = report["tables"]["variants"]
    names = [r["variant"] for r in rows]
    assert names == ["minimax (textbook)", "nonsaturating (textbook)", "wgan-clip (textbook)", "wgan-gp (textbook)",
                     "+ learning rates 1e-3", "+ cosine decay", "+ batch 1024", "+ 8,000 steps"]
    assert report["seeds"] == [0] and all(len(r[k]) == 1 for r in rows for k in ("modes", "hq_percent", "energy"))
    for r in rows:  # the printed row shows the worst seed of the records
        line = next(line for line in stdout.splitlines() if line.startswith(f"| {r['variant']} "))
        assert f"(min {min(r['modes']):.0f})" in line and f"(min {min(r['hq_percent']):.1f})" in line, line
    # the table is its seed's run (one at smoke size), and that run is train_2d's: the chapters' recipe, shrunk,
    # trained again here gives the numbers the benchmark wrote
    from dgm_course.gan import BEST, train_2d

    _, history = train_2d(BEST.but(hidden=16, steps=20, batch=64), "25gaussians", seed=0, progress=False)
    final = history.evaluations[-1]
    assert rows[-1]["modes"] == [final["modes"]]
    assert rows[-1]["hq_percent"] == pytest.approx([100 * final["hq"]], abs=1e-9)
    assert rows[-1]["energy"] == pytest.approx([final["energy"]], abs=5e-5)
    (target,) = report["targets"]
    assert target["min_modes"] == final["modes"] and target["min_hq_percent"] == pytest.approx(100 * final["hq"])
    assert target["met"] == (final["modes"] >= target["need_modes"] and 100 * final["hq"] >= target["need_hq_percent"]
                             and target["max_train_s"] <= target["need_train_s"])


@slow
def test_metrics_benchmark(tmp_path) -> None:
    _, report = benchmark("metrics", "--smoke", tmp_path=tmp_path)
    rows = report["tables"]["energy distance"]
    assert [(r["n"], r["d"], r["method"]) for r in rows] == [
        (n, d, m) for n, d in ((300, 2), (300, 16)) for m in ("dgm_course", "dcor", "scipy")]
    for r in rows:
        if r["method"] == "dcor":
            assert r["rel_diff"] is None and r["dcor_ratio"] == 1.0
        else:
            assert r["rel_diff"] <= 1e-12, r  # agreement with dcor, relative
    agreement = [t for t in report["targets"] if "agreement with dcor" in t["target"]]
    assert len(report["targets"]) == 6 and len(agreement) == 2 and all(t["met"] for t in agreement)


@slow
def test_applications_benchmark(tmp_path) -> None:
    _, report = benchmark("applications", "--smoke", tmp_path=tmp_path, timeout=900)
    rows = report["tables"]["methods"]
    methods = [r["method"] for r in rows]
    for method in ("SRResNet", "SRGAN", "Richardson-Lucy", "conditional GAN", "Gatys et al., style shipwreck",
                   "Gatys et al., style the_scream"):
        assert method in methods, methods
    targets = [t["target"] for t in report["targets"]]
    for target in ("SRResNet over bicubic", "galaxy GAN over Richardson-Lucy",
                   "shipwreck: patch energy / photograph's"):
        assert any(t.startswith(target) for t in targets), targets
    psnr = [r["psnr"] for r in rows if r["chapter"] in ("super-resolution", "galaxies")]
    assert len(psnr) == 8 and all(0 < v < 100 for v in psnr)
    assert all(r["psnr"] is None and 0 < r["patch_ratio"] for r in rows if r["chapter"] == "style transfer")


def _book_time_rows(report: dict) -> dict[str, dict]:
    return {r["chapter"]: r for r in report["tables"]["chapters"]}


@slow
@pytest.mark.skipif(not os.environ.get("DGM_BOOK_HTML"), reason="needs a built book (scripts/test.sh builds one)")
def test_book_time_reads_every_chapter_of_the_last_build(tmp_path) -> None:
    build = Path(os.environ["DGM_BOOK_HTML"]).parents[1]  # <build>/_build/html -> <build>
    _, report = benchmark("book_time", str(build), tmp_path=tmp_path, codes=(0, 1), timeout=120)
    rows = _book_time_rows(report)
    chapters = sorted(p.stem for p in (ROOT / "notebooks").glob("*.ipynb"))
    assert all(name in rows for name in chapters), rows
    seconds = [rows[name]["seconds"] for name in chapters]  # every chapter executed in this build, each timed
    assert all(s is not None and s > 0 for s in seconds)
    assert rows["whole book"]["seconds"] == pytest.approx(sum(seconds))  # the total is the sum


@slow
def test_book_time_on_a_cache_it_is_given(tmp_path) -> None:
    """benchmarks/book_time.py on an execution cache written here: every chapter but the last, with known times;
    the last counts as not executed, so the chapters' target is missed (exit 1)."""
    import nbformat
    from jupyter_cache import get_cache
    from jupyter_cache.base import CacheBundleIn

    cache = get_cache(str(tmp_path / "build" / "_build" / ".jupyter_cache"))
    paths = sorted((ROOT / "notebooks").glob("*.ipynb"))
    given = {p.stem: 10.0 + i for i, p in enumerate(paths[:-1])}
    for p in paths[:-1]:
        cache.cache_notebook_bundle(CacheBundleIn(nbformat.read(p, as_version=4), str(p),
                                                  data={"execution_seconds": given[p.stem]}), check_validity=False)
    stdout, report = benchmark("book_time", str(tmp_path / "build"), tmp_path=tmp_path, codes=(1,), timeout=120)
    rows = _book_time_rows(report)
    assert {name: rows[name]["seconds"] for name in given} == given and all(rows[n]["met"] for n in given)
    assert rows[paths[-1].stem] == {"chapter": paths[-1].stem, "seconds": None, "met": None}
    assert f"| {paths[-1].stem} " in stdout and "not executed" in stdout
    assert rows["whole book"]["seconds"] == pytest.approx(sum(given.values()))
    chapters, article, book = report["targets"]
    assert not chapters["met"] and chapters["over_or_missing"] == [paths[-1].stem]
    assert article["met"] and book["met"]


@slow
def test_claims_benchmark_reports_the_records_it_finds(tmp_path) -> None:
    """benchmarks/claims.py --report on records written here: each claim's value under every run, its smallest
    margin, and a failing claim named by the target."""
    chapter = sorted(p.stem for p in (ROOT / "notebooks").glob("*.ipynb"))[0]

    def claim(text: str, value: float, holds: bool) -> dict:
        return dict(text=text, value=value, op="<", threshold=1.0, book_only=False, checked=True, holds=holds,
                    margin=1.0 - value)

    for seed, threads, values in ((0, 2, (0.25, 0.5, -0.15)), (7, 1, (0.5, 1.5, 0.1))):
        (tmp_path / f"{chapter}.smoke.seed{seed}.t{threads}.json").write_text(json.dumps(dict(
            chapter=chapter, seed=seed, budget="smoke", threads=threads,
            claims=[claim("test claim A", values[0], True), claim("test claim B", values[1], values[1] < 1)],
            observed={"test observation": values[2]})))
    stdout, report = benchmark("claims", "--smoke", "--report", "--chapters", chapter[:2], "--needed", "2",
                               "--out", str(tmp_path), tmp_path=tmp_path, codes=(1,), timeout=120)
    runs = [(r["seed"], r["threads"]) for r in report["runs"]]
    mine = [runs.index((0, 2)), runs.index((7, 1))]  # other runs may be recorded by a build of the book
    rows = by_model(report["tables"]["claims"], "claim")
    a, b, seen = rows["test claim A"], rows["test claim B"], rows["test observation (observed, not claimed)"]
    assert [a["values"][i] for i in mine] == [0.25, 0.5] and a["holds"] and a["min_margin"] == 0.5
    assert [b["held"][i] for i in mine] == [True, False] and b["holds"] is False and b["min_margin"] == -0.5
    assert seen["holds"] is None and seen["sign_varies"] and [seen["values"][i] for i in mine] == [-0.15, 0.1]
    assert "1.5 FAIL" in stdout and "sign varies" in stdout
    (target,) = report["targets"]
    assert not target["met"] and f"{chapter[:2]}: test claim B" in target["failing"]
    assert f"{chapter[:2]}: test claim A" not in target["failing"] + target["too_few_runs"]


@slow
def test_diffusion_benchmark_checkerboard_table(tmp_path) -> None:
    _, report = benchmark("diffusion", "--smoke", "--part", "checkerboard", tmp_path=tmp_path)
    assert list(report["tables"]) == ["checkerboard", "ddim", "checkerboard targets"]  # not the digits' table
    rows = by_model(report["tables"]["checkerboard"])
    assert list(rows) == ["diffusion (VP, noise, probability-flow ODE)", "flow matching (continuous flows)"]
    per_seed = rows["diffusion (VP, noise, probability-flow ODE)"]["nll"]
    assert len(per_seed) == 3 and all(v > LN32 - 0.1 for v in per_seed)  # three seeds, none below ln 32
    assert all(r["worst_nll"] == max(r["nll"]) for r in rows.values())
    assert [r["steps"] for r in report["tables"]["ddim"]] == [5, 10]
    assert all(len(r["p"]) == 3 and all(0 < p <= 1 for p in r["p"]) for r in report["tables"]["ddim"])
    gaps, ddim = report["targets"]
    assert gaps["gaps"] == pytest.approx([a - b for a, b in zip(
        rows["diffusion (VP, noise, probability-flow ODE)"]["nll"], rows["flow matching (continuous flows)"]["nll"])])
    assert gaps["met"] == (max(gaps["gaps"]) <= 0.05) and "DDIM" in ddim["target"]


@slow
def test_diffusion_benchmark_digits_table(tmp_path) -> None:
    """The digits' table: its floor is the energy distance of the real training digits to the held-out ones, and
    its bits per dimension are the 17-level images' (NLL + 64 ln 17) / (64 ln 2), for every seed."""
    import dcor

    _, report = benchmark("diffusion", "--smoke", "--part", "digits", tmp_path=tmp_path)
    assert list(report["tables"]) == ["digits", "digits targets"]  # not the checkerboard's
    rows = by_model(report["tables"]["digits"])
    floor = dcor.energy_distance(images.load("digits", "train").images.flatten(1).double().numpy(),
                                 images.load("digits", "test").images[:20].flatten(1).double().numpy(),
                                 estimation_stat="u_statistic")  # dcor's, not the call the benchmark makes
    assert rows["real digits: training against held-out (the floor)"]["energy"] == pytest.approx([floor] * 3,
                                                                                                 rel=1e-9)
    for name in ("diffusion, U-Net (DDIM 50; probability-flow ODE)",
                 "diffusion, MLP (guided diffusion's network, no labels)",
                 "VAE, Gaussian decoder (IWAE bound)", "RealNVP (logit transform)"):
        nll, bits = rows[name]["nll"], rows[name]["bits"]
        assert len(nll) == 3 and bits == pytest.approx([(v + 64 * math.log(17)) / (64 * math.log(2)) for v in nll],
                                                      abs=1e-9), (name, nll, bits)
    gan = rows["DCGAN (the GAN chapter's)"]
    assert gan["nll"] is None and gan["median_nll"] is None and gan["bits"] is None  # a GAN has no likelihood
    (target,) = report["targets"]
    assert target["target"].startswith("the U-Net diffusion's samples nearer the held-out digits")
    assert target["met"] == all(target["met_per_seed"]) and len(target["met_per_seed"]) == 3


@slow
def test_ebm_benchmark(tmp_path) -> None:
    _, report = benchmark("ebm", "--smoke", tmp_path=tmp_path)
    rows = by_model(report["tables"]["ebm"], "data")
    assert list(rows) == ["8gaussians", "moons"]
    for name, r in rows.items():
        assert r["entropy"] == pytest.approx(toy2d.entropy(name), abs=1e-12)  # the floor, the data's entropy
        assert all(v > r["entropy"] - 0.1 for v in r["nll"])  # no held-out NLL far below the floor
        assert r["gap"] == pytest.approx([v - r["entropy"] for v in r["nll"]])
    assert [t["met"] for t in report["targets"]] == [r["met"] for r in rows.values()]


@slow
@NEEDS_FASHION
def test_autoregressive_benchmark(tmp_path) -> None:
    _, report = benchmark("autoregressive", "--smoke", tmp_path=tmp_path)
    rows = by_model(report["tables"]["models"])
    for name in ("MADE", "PixelCNN (gated)", "VAE (IWAE bound)"):
        (nll,), (bits,) = rows[name]["nll"], rows[name]["bits"]  # one seed at smoke size
        assert 0 < nll < 1.1 * 784 * math.log(2), rows[name]  # near or below a coin per pixel, after a few steps
        assert bits == pytest.approx(nll / (784 * math.log(2)), abs=1e-9)  # bits per dimension
    (target,) = report["targets"]
    assert target["best"][0] in rows and target["best"][0] != "VAE (IWAE bound)"
    assert target["nats_below_vae"][0] == pytest.approx(rows["VAE (IWAE bound)"]["nll"][0]
                                                        - rows[target["best"][0]]["nll"][0])
