r"""The pieces of the evidence lower bound, one function a formula.

With a prior :math:`p_Z = \mathcal N(0, I_q)`, a decoder :math:`p_\theta(x \mid z)` and an encoder
:math:`q_\psi(z \mid x) = \mathcal N(\mu_\psi(x), \operatorname{diag}\sigma^2_\psi(x))`, the ELBO is

.. math::
    \log p_\theta(x) \ \ge\ \mathcal L(x) = \mathbb E_{q_\psi(z \mid x)}\big[\log p_\theta(x \mid z)\big]
    - \mathrm{KL}\big(q_\psi(z \mid x)\,\|\,p_Z\big),

estimated with the reparameterization :math:`z = \mu + \sigma \odot \varepsilon`,
:math:`\varepsilon \sim \mathcal N(0, I)`, and the KL term in closed form,
:math:`\mathrm{KL} = \frac12 \sum_j \big(\sigma_j^2 + \mu_j^2 - 1 - \log\sigma_j^2\big)`.
The importance-weighted bound of Burda et al. (2016) averages :math:`k` weights inside the log,

.. math::
    \mathcal L_k(x) = \mathbb E\Big[\log \frac1k \sum_{i=1}^k \frac{p_\theta(x, z_i)}{q_\psi(z_i \mid x)}\Big],
    \quad z_i \sim q_\psi(z \mid x), \qquad \mathcal L = \mathcal L_1 \le \mathcal L_k \le \mathcal L_{k+1}
    \le \log p_\theta(x).

All log-densities here are summed over every dimension but the first (batch): one number per example.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from ..latent import LOG_2PI
from ..latent import log_prob as standard_normal_log_prob  # noqa: F401 - the prior p_Z, shared with the flows


def _sum_events(values: Tensor) -> Tensor:
    return values.flatten(1).sum(dim=1)


def gaussian_log_prob(x: Tensor, mean: Tensor, log_var: Tensor) -> Tensor:
    r""":math:`\log \mathcal N(x; \mu, \operatorname{diag} e^{v}) = -\frac12 \sum_j \big(\log 2\pi + v_j
    + (x_j - \mu_j)^2 e^{-v_j}\big)` per example (``log_var`` :math:`v` broadcasts)."""
    return _sum_events(-0.5 * (LOG_2PI + log_var + (x - mean) ** 2 * torch.exp(-log_var)))


def bernoulli_log_prob(x: Tensor, logits: Tensor) -> Tensor:
    r""":math:`\log p(x) = \sum_j x_j \log \pi_j + (1 - x_j)\log(1 - \pi_j)` with :math:`\pi = \sigma(\ell)`,
    written as :math:`\sum_j x_j \ell_j - \log(1 + e^{\ell_j})` so that it never takes the log of 0."""
    return _sum_events(x * logits - F.softplus(logits))


def gaussian_kl(mean: Tensor, log_var: Tensor) -> Tensor:
    r"""Closed-form :math:`\mathrm{KL}\big(\mathcal N(\mu, \operatorname{diag} e^{v}) \,\|\, \mathcal N(0, I)\big)
    = \frac12 \sum_j \big(e^{v_j} + \mu_j^2 - 1 - v_j\big)` per example."""
    return _sum_events(0.5 * (torch.exp(log_var) + mean**2 - 1 - log_var))


def reparameterize(mean: Tensor, log_var: Tensor, generator: torch.Generator | None = None) -> Tensor:
    r"""A draw :math:`z = \mu + e^{v/2} \odot \varepsilon`, :math:`\varepsilon \sim \mathcal N(0, I)`, with
    :math:`\mu` = ``mean`` and :math:`v` = ``log_var``: random only through :math:`\varepsilon`, so gradients flow
    to :math:`\mu` and :math:`v`."""
    eps = torch.randn(mean.shape, generator=generator, dtype=mean.dtype, device=mean.device)
    return mean + torch.exp(0.5 * log_var) * eps


def log_mean_exp(values: Tensor, dim: int = 0) -> Tensor:
    r""":math:`\log \frac1k \sum_i e^{a_i}` along ``dim``, computed stably as a log-sum-exp."""
    return torch.logsumexp(values, dim=dim) - math.log(values.shape[dim])
