"""The benchmark scripts run end to end (at their smoke sizes) and print their tables."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_flows_benchmark_prints_its_table() -> None:
    env = {**os.environ, "DGM_PROGRESS": "0"}
    run = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "flows.py"), "--smoke"], capture_output=True,
                         text=True, env=env, timeout=600, check=False)
    assert run.returncode == 0, run.stderr
    for row in ("RealNVP (dgm_course)", "RealNVP (zuko)", "spline flow (dgm_course)", "time per step ratio"):
        assert row in run.stdout, run.stdout
    nll = [float(line.split("|")[6].split("±")[0]) for line in run.stdout.splitlines() if "(dgm_course)" in line
           and line.startswith("|")]
    assert len(nll) == 2 and all(v > 3.4657 - 0.1 for v in nll)  # never (much) below the entropy ln 32


def test_cnf_benchmark_prints_its_table() -> None:
    env = {**os.environ, "DGM_PROGRESS": "0"}
    run = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "cnf.py"), "--smoke"], capture_output=True,
                         text=True, env=env, timeout=600, check=False)
    assert run.returncode == 0, run.stderr
    for row in ("ML-CNF", "OT-Flow", "flow matching", "CNF (dgm_course, backprop", "continuous adjoint", "CNF (zuko", "s to reach"):
        assert row in run.stdout, run.stdout
    nll = [float(line.split("|")[5].split("±")[0]) for line in run.stdout.splitlines()
           if line.startswith("| ") and ("ML-CNF" in line or "OT-Flow" in line or "flow matching" in line)]
    assert len(nll) == 6 and all(v > 3.4657 - 0.1 for v in nll)  # never (much) below the entropy ln 32
