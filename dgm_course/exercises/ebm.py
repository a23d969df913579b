"""Checkers for the exercises of the energy-based chapter."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor

from .core import Case, Report, compare


def _reference(x: Tensor, score: Tensor, step: float, z: Tensor) -> Tensor:
    return x + 0.5 * step * score + math.sqrt(step) * z


def check_langevin_step(langevin_step: Callable[[Tensor, Tensor, float, Tensor], Tensor]) -> Report:
    r"""Check a student's ``langevin_step(x, score, step, z)``, one step of ``eq-langevin``:
    :math:`x + \frac{\delta}{2}\,\mathrm{score} + \sqrt\delta\,z` with the score at ``x`` and the standard normal ``z``
    given: against the reference on several inputs, then by running 3,000 steps on the energy of
    :math:`\mathcal N(m, s^2 I)` from far away and checking the chain's mean and standard deviation."""
    gen = torch.Generator().manual_seed(0)
    x, s, z = (torch.randn(6, 2, generator=gen, dtype=torch.float64) for _ in range(3))
    cases = [Case((x, s, 0.1, z), "step 0.1"), Case((x, s, 0.01, z), "step 0.01"),
             Case((x[:1], s[:1], 0.5, z[:1]), "one point, step 0.5")]
    report = compare(langevin_step, _reference, cases, name="langevin_step", atol=1e-12, rtol=1e-12,
                     hint="half the step times the score, plus the square root of the step times the noise")
    report.checks += 1
    m, sd = torch.tensor([1.0, -2.0], dtype=torch.float64), 0.5
    chain = 5 + torch.zeros(4000, 2, dtype=torch.float64)
    try:
        for _ in range(3000):
            chain = langevin_step(chain, -(chain - m) / sd**2, 0.01, torch.randn(chain.shape, generator=gen,
                                                                                  dtype=torch.float64))
    except Exception as err:  # noqa: BLE001 - the student's error is the message
        report.failures.append(f"running the chain raised {type(err).__name__}: {err}")
        return report
    mean_ok = bool((chain.mean(0) - m).abs().max() < 0.05)
    sd_ok = bool((chain.std(0) - sd).abs().max() < 0.05)
    if not (mean_ok and sd_ok):
        report.failures.append(f"on N((1, -2), 0.5^2 I) the chain ends with mean {chain.mean(0).tolist()} and standard "
                               f"deviation {chain.std(0).tolist()}; a Langevin chain reaches the law's")
    return report
