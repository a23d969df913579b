"""Checkers for the exercises of the diffusion chapter."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from ..diffusion import Schedule
from .core import Case, Report, compare


def _reference_ddim(x_t: Tensor, eps_hat: Tensor, alpha_t: float, sigma_t: float, alpha_r: float,
                    sigma_r: float) -> Tensor:
    x0_hat = (x_t - sigma_t * eps_hat) / alpha_t
    return alpha_r * x0_hat + sigma_r * eps_hat


def check_ddim_step(step: Callable[..., Tensor]) -> Report:
    r"""Check a student's deterministic DDIM step ``step(x_t, eps_hat, alpha_t, sigma_t, alpha_r, sigma_r)``, which
    returns :math:`x_r = \alpha_r\hat x_0 + \sigma_r\hat\varepsilon` at an earlier time :math:`r < t`, with
    :math:`\hat x_0 = (x_t - \sigma_t\hat\varepsilon)/\alpha_t`: against the reference on the linear, cosine and
    variance-exploding schedules, for a last step to :math:`r = 0` (which must return :math:`\hat x_0`), and on images
    (any shape)."""
    gen = torch.Generator().manual_seed(0)
    x, eps = (torch.randn(6, 2, generator=gen, dtype=torch.float64),
              torch.randn(6, 2, generator=gen, dtype=torch.float64))
    images = torch.randn(3, 1, 4, 4, generator=gen, dtype=torch.float64)
    cases = []
    for kind, (t, r) in (("linear", (0.6, 0.5)), ("cosine", (0.9, 0.7)), ("ve", (0.8, 0.2)), ("linear", (0.1, 0.0))):
        sched = Schedule(kind)
        a_t, sig_t, a_r, sig_r = (float(sched.alpha(t)), float(sched.sigma(t)), float(sched.alpha(r)),
                                  float(sched.sigma(r)))
        cases.append(Case((x, eps, a_t, sig_t, a_r, sig_r), f"the {kind} schedule from t = {t} to r = {r}"))
    cases.append(Case((images, torch.randn(images.shape, generator=gen, dtype=torch.float64), 0.5, 0.8, 0.7, 0.6),
                      "images of shape (3, 1, 4, 4)"))
    return compare(step, _reference_ddim, cases, name="ddim_step", atol=1e-10, rtol=1e-10,
                   hint="first recover x0_hat from x_t = alpha_t x0 + sigma_t eps, then put it back at time r with "
                        "the same eps_hat: no fresh noise in DDIM.")

