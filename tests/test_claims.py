"""The seed switch (DGM_SEED) and the claims every chapter's sanity cell checks (dgm_course.notebook)."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from dgm_course import budget
from dgm_course.notebook import Claim, ClaimFailed, check_claims, seed_everything
from dgm_course.training import fit

ROOT = Path(__file__).resolve().parent.parent


def test_seed_switch_shifts_every_seed_together(monkeypatch):
    monkeypatch.delenv("DGM_SEED", raising=False)
    assert [budget.seed(k) for k in (0, 7, 2024)] == [0, 7, 2024]  # unset: every seed as written
    monkeypatch.setenv("DGM_SEED", "3")
    assert [budget.seed(k) for k in (0, 7)] == [3 * budget.SEED_STRIDE, 7 + 3 * budget.SEED_STRIDE]
    monkeypatch.setenv("DGM_SEED", "31337")  # k + 1,000,003 x 31,337 is past 2^32: folded into NumPy's range
    seeds = [budget.seed(k) for k in range(1000)]
    assert all(0 <= s < 2**32 for s in seeds) and len(set(seeds)) == 1000
    assert seeds[0] == 31337 * budget.SEED_STRIDE % 2**32
    np.random.RandomState(seeds[5])  # what KMeans(random_state=...) and np.random.seed accept
    firsts = set()
    for switch in (0, 1, 2, 4093, 31337, 2**32 - 1, 10**12):
        monkeypatch.setenv("DGM_SEED", str(switch))
        firsts.add(budget.seed(0))
    assert len(firsts) == 7  # every switch its own seeds
    for bad in ("-1", "two", "1.5"):
        monkeypatch.setenv("DGM_SEED", bad)
        with pytest.raises(ValueError, match=f"DGM_SEED={bad!r} is not a seed; use a whole number >= 0"):
            budget.seed(0)
    monkeypatch.setenv("DGM_SEED", "0")
    for bad in (-2, budget.SEED_STRIDE, 1.0, True):
        with pytest.raises(ValueError, match=f"seed.k. takes a whole number 0 <= k < 1,000,003; got {bad!r}"):
            budget.seed(bad)


def _losses(monkeypatch, course_seed: str) -> list[float]:
    monkeypatch.setenv("DGM_SEED", course_seed)
    seed_everything(0)
    model = torch.nn.Linear(2, 1)
    data = torch.randn(64, 2, generator=torch.Generator().manual_seed(budget.seed(5)))
    history = fit(model, lambda x: model(x).pow(2).mean(), data, steps=5, batch_size=8, progress=False)
    return history.loss


def test_training_follows_the_seed_switch(monkeypatch):
    first, again, other = _losses(monkeypatch, "0"), _losses(monkeypatch, "0"), _losses(monkeypatch, "1")
    assert first == again  # the same seed: the same run, bit for bit
    assert other != first and all(map(math.isfinite, other))  # another seed: another valid run


def test_a_claim_knows_its_margin():
    assert Claim("gain", 1.4, ">=", 1.0).margin == pytest.approx(0.4)
    assert Claim("error", 2e-9, "<", 1e-8).margin == pytest.approx(8e-9)
    assert not Claim("gain", 0.9, ">=", 1.0).holds and Claim("edge", 1.0, ">=", 1.0).holds
    assert not Claim("edge", 1.0, ">", 1.0).holds
    assert not Claim("nan", math.nan, "<", 1.0).holds and Claim("nan", math.nan, "<", 1.0).margin == -math.inf
    assert Claim.fact("a fact", True).holds and not Claim.fact("a fact", False).holds
    with pytest.raises(ValueError, match="op must be one of"):
        Claim("bad", 1.0, "==", 1.0)  # type: ignore[arg-type]


def test_check_claims_prints_records_and_fails_with_what_to_do(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("DGM_SEED", "2")
    monkeypatch.setenv("DGM_BUDGET", "book")
    monkeypatch.setenv("DGM_CLAIMS_DIR", str(tmp_path))
    claims = [Claim("holds", 2.0, ">", 1.0), Claim("fails", 0.5, ">=", 1.0, book_only=True)]
    with pytest.raises(ClaimFailed) as err:
        check_claims("99_test", claims, observed={"which model wins": -0.25})
    message = str(err.value)
    for part in ("chapter 99_test", "fails: measured 0.5, needs >= 1", "DGM_SEED=2", "DGM_BUDGET=book",
                 "python scripts/notebooks.py run 99_test"):
        assert part in message
    assert capsys.readouterr().out == "PASS holds\nFAIL fails\n"
    (record,) = tmp_path.glob("99_test.book.seed2.*.json")
    saved = json.loads(record.read_text())
    assert saved["seed"] == 2 and [c["holds"] for c in saved["claims"]] == [True, False]
    assert saved["claims"][1]["margin"] == pytest.approx(-0.5)
    assert saved["observed"] == {"which model wins": -0.25}  # recorded, never asserted

    monkeypatch.setenv("DGM_BUDGET", "smoke")  # a claim about training is not checked by a few steps
    check_claims("99_test", claims)
    assert capsys.readouterr().out == "PASS holds\nSKIP fails\n"


@pytest.mark.slow
def test_claims_benchmark_runs_a_chapter_under_two_seeds(tmp_path):
    """benchmarks/claims.py at the smoke budget: chapter 1 under seeds 0 and 31337 gives two valid, different runs
    (the second's seeds pass 2^32 before they are folded: scikit-learn's KMeans accepts them)."""
    env = {**os.environ, "DGM_PROGRESS": "0"}
    run = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "claims.py"), "--smoke", "--chapters", "01",
                          "--seeds", "0", "31337", "--single-thread", "--needed", "2", "--out", str(tmp_path)],
                         capture_output=True, text=True, env=env, timeout=600, check=False)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "inverse-CDF samples pass the energy test" in run.stdout and "min margin" in run.stdout
    assert "-> met" in run.stdout
    values = {}
    for path in tmp_path.glob("01_unsupervised_learning.smoke.seed*.json"):
        record = json.loads(path.read_text())
        assert all(c["holds"] for c in record["claims"])
        values[record["seed"]] = [c["value"] for c in record["claims"]]
    assert sorted(values) == [0, 31337] and values[0] != values[31337]
