r"""The linear-Gaussian model (probabilistic PCA, Tipping and Bishop 1999), where everything a VAE only
bounds is exact: a numerical check of the ELBO.

.. math::
    z \sim \mathcal N(0, I_q), \qquad x \mid z \sim \mathcal N(Wz + b, s^2 I_d)
    \quad\Longrightarrow\quad x \sim \mathcal N(b, WW^\top + s^2 I_d),

and by Bayes' rule the posterior is Gaussian,

.. math::
    p(z \mid x) = \mathcal N\big(M^{-1}W^\top(x - b),\ s^2 M^{-1}\big), \qquad M = W^\top W + s^2 I_q.

:func:`linear_gaussian_vae` builds this model as a :class:`~dgm_course.vae.models.VAE` (linear decoder,
Gaussian likelihood) with a linear encoder :math:`q(z \mid x) = \mathcal N(Ax + c, \operatorname{diag} e^{v})`,
so that the VAE's own ``elbo`` and ``iwae_bound`` can be compared with :func:`log_evidence` and
:func:`kl_to_posterior`: the gap :math:`\log p(x) - \mathcal L(x)` equals
:math:`\mathrm{KL}(q(z \mid x) \| p(z \mid x))`.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .models import VAE


class _AffineEncoder(nn.Module):
    """x -> (A x + c, v): a mean linear in x and a log-variance that does not depend on x."""

    def __init__(self, dim: int, latent: int) -> None:
        super().__init__()
        self.mean = nn.Linear(dim, latent)
        self.log_var = nn.Parameter(torch.zeros(latent))

    def forward(self, x: Tensor) -> Tensor:
        mean = self.mean(x)
        return torch.cat([mean, self.log_var.expand_as(mean)], dim=1)


def linear_gaussian_vae(dim: int, latent: int, scale: float = 0.5, miss: float = 0.3,
                        generator: torch.Generator | None = None) -> VAE:
    """A linear-Gaussian VAE on vectors of length ``dim`` with random :math:`W, b` (from ``generator``) and
    noise scale :math:`s` = ``scale``. Its encoder starts from the exact posterior's mean map and diagonal
    variances and is then perturbed by noise of size ``miss``, so that :math:`q` is near, but not equal to,
    the posterior (which also has correlations that a diagonal Gaussian cannot represent)."""
    decoder = nn.Linear(latent, dim)
    encoder = _AffineEncoder(dim, latent)
    vae = VAE(encoder, decoder, (dim,), latent, likelihood="gaussian", log_scale=float(torch.log(torch.tensor(scale))))
    with torch.no_grad():
        decoder.weight.copy_(torch.randn(dim, latent, generator=generator))
        decoder.bias.copy_(torch.randn(dim, generator=generator))
        W, b, s2 = _parts(vae)
        M = W.T @ W + s2 * torch.eye(latent)
        A = torch.linalg.solve(M, W.T)  # posterior mean = A (x - b)
        encoder.mean.weight.copy_(A + miss * torch.randn(A.shape, generator=generator) * A.abs().mean())
        encoder.mean.bias.copy_(-A @ b + miss * torch.randn(latent, generator=generator))
        encoder.log_var.copy_(torch.log(torch.diagonal(s2 * torch.linalg.inv(M)))
                              + miss * torch.randn(latent, generator=generator))
    return vae


def _parts(vae: VAE) -> tuple[Tensor, Tensor, Tensor]:
    if not isinstance(vae.decoder, nn.Linear) or vae.likelihood != "gaussian":
        raise ValueError("exact quantities need a linear-Gaussian VAE (from linear_gaussian_vae)")
    return vae.decoder.weight, vae.decoder.bias, torch.exp(2 * vae._log_scale())


def log_evidence(vae: VAE, x: Tensor) -> Tensor:
    r"""The exact :math:`\log p(x) = \log \mathcal N(x; b, WW^\top + s^2 I)` per example."""
    W, b, s2 = _parts(vae)
    cov = W @ W.T + s2 * torch.eye(len(b), dtype=W.dtype)
    return torch.distributions.MultivariateNormal(b, covariance_matrix=cov).log_prob(x)


def posterior(vae: VAE, x: Tensor) -> tuple[Tensor, Tensor]:
    r"""The exact posterior :math:`p(z \mid x)`: its means (batch, q) and its covariance (q, q), the same
    for every x."""
    W, b, s2 = _parts(vae)
    M = W.T @ W + s2 * torch.eye(W.shape[1], dtype=W.dtype)
    return torch.linalg.solve(M, W.T @ (x - b).T).T, s2 * torch.linalg.inv(M)


def kl_to_posterior(vae: VAE, x: Tensor) -> Tensor:
    r""":math:`\mathrm{KL}\big(q(z \mid x)\,\|\,p(z \mid x)\big)` per example, between the encoder's Gaussian and
    the exact posterior (the closed form for two Gaussians)."""
    mean_q, log_var_q = vae.encode(x)
    mean_p, cov_p = posterior(vae, x)
    q = torch.distributions.MultivariateNormal(mean_q, scale_tril=torch.diag_embed(torch.exp(0.5 * log_var_q)))
    p = torch.distributions.MultivariateNormal(mean_p, covariance_matrix=cov_p.expand(len(x), -1, -1))
    return torch.distributions.kl_divergence(q, p)
