"""Checkers for the exercises of the variational-autoencoders chapter."""

from __future__ import annotations

from typing import Any, Callable

import torch
from torch import Tensor

from ..vae import gaussian_kl, kl_to_posterior, linear_gaussian_vae, log_evidence
from .core import Case, Report, compare


def check_gaussian_kl(kl: Callable[[Tensor, Tensor], Tensor]) -> Report:
    r"""Check a student's ``kl(mean, log_var)`` of :math:`\mathrm{KL}(\mathcal N(\mu, \operatorname{diag} e^{v})
    \| \mathcal N(0, I))`, one value per row: against the closed form on the standard normal itself (0), a
    shifted mean, a narrow and a wide posterior, and a batch of random rows (1e-10, float64)."""
    gen = torch.Generator().manual_seed(0)
    d64: dict[str, Any] = dict(dtype=torch.float64)
    cases = [
        Case((torch.zeros(2, 3, **d64), torch.zeros(2, 3, **d64)), "q = p = N(0, I): KL must be 0"),
        Case((torch.full((1, 2), 1.5, **d64), torch.zeros(1, 2, **d64)), "mean 1.5, unit variance"),
        Case((torch.zeros(1, 4, **d64), torch.full((1, 4), -3.0, **d64)), "a narrow posterior (log-variance -3)"),
        Case((torch.zeros(1, 4, **d64), torch.full((1, 4), 2.0, **d64)), "a wide posterior (log-variance 2)"),
        Case((torch.randn(6, 5, generator=gen, **d64), torch.randn(6, 5, generator=gen, **d64)),
             "six random rows of five dimensions"),
    ]
    return compare(kl, gaussian_kl, cases, name="gaussian_kl", atol=1e-10, rtol=1e-10,
                   hint="per dimension 0.5 * (exp(v) + mu^2 - 1 - v), summed over the dimensions of each row "
                        "(not over the batch); v is the log-variance, not the standard deviation.")


def check_elbo_gap(elbo: Callable[..., Tensor]) -> Report:
    r"""Check a student's ``elbo(vae, x, samples)``, a Monte Carlo ELBO per example, on a linear-Gaussian
    VAE where :math:`\log p(x) - \mathrm{KL}(q \| p(z \mid x))` is its exact expectation (within 4 standard
    errors over 200 calls)."""
    torch.manual_seed(0)
    vae = linear_gaussian_vae(4, 2, generator=torch.Generator().manual_seed(1)).double()
    x = torch.randn(3, 4, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    report = Report("elbo", checks=1)
    with torch.no_grad():
        try:
            draws = torch.stack([torch.as_tensor(elbo(vae, x, 50), dtype=torch.float64) for _ in range(200)])
        except Exception as err:  # noqa: BLE001 - the student's error is the message
            report.failures.append(f"elbo(vae, x, 50) raised {type(err).__name__}: {err}")
            return report
        if draws.shape != (200, 3):
            report.failures.append(f"elbo must return one value per example, shape (3,); got {tuple(draws.shape[1:])}")
            return report
        exact = log_evidence(vae, x) - kl_to_posterior(vae, x)
    mean, se = draws.mean(0), draws.std(0) / 200**0.5
    if not ((mean - exact).abs() <= 4 * se + 1e-9).all():
        report.failures.append(f"the average of your ELBO is {[round(float(v), 3) for v in mean]}, the exact ELBO "
                               f"{[round(float(v), 3) for v in exact]} (standard errors "
                               f"{[round(float(v), 3) for v in se]})")
        report.hint = ("draw z = mean + exp(log_var / 2) * eps from the encoder, average vae.log_likelihood(x, z) "
                       "over the samples, subtract the closed-form KL to N(0, I)")
    return report
