r"""Variational autoencoders: an encoder :math:`q_\psi(z \mid x)`, a decoder :math:`p_\theta(x \mid z)`, the
prior :math:`p_Z = \mathcal N(0, I_q)`, and the bounds of :mod:`dgm_course.vae.bounds` on :math:`\log p_\theta(x)`.

The generator of the course's push-forward picture is the decoder's mean :math:`g_\theta(z)`; the VAE's
model of the data adds the decoder's noise to it:

- ``"bernoulli"``: :math:`p_\theta(x \mid z) = \prod_j \mathrm{Bernoulli}(x_j; \sigma(\ell_\theta(z)_j))` for
  binary images (binarize grey levels with :func:`dgm_course.data.images.binarize`);
- ``"gaussian"``: :math:`p_\theta(x \mid z) = \mathcal N(x; g_\theta(z), s^2 I)` with one learned scale
  :math:`s` for all pixels.

:func:`mlp_vae` and :func:`conv_vae` build the two architectures: MLPs on flattened images, and convolutions.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn

from .. import budget, latent
from .._checks import as_images, one_of, positive_int, same_dtype
from ..nets import mlp
from .bounds import (
    bernoulli_log_prob,
    gaussian_kl,
    gaussian_log_prob,
    log_mean_exp,
    reparameterize,
    standard_normal_log_prob,
)

LIKELIHOODS = ("bernoulli", "gaussian")

class VAE(nn.Module):
    r"""A VAE on examples of shape ``shape`` (e.g. (1, 28, 28)) with a ``latent``-dimensional code.

    Args:
        encoder: maps a batch (batch, \*shape) to (batch, 2 * latent): the mean and the log-variance of
            :math:`q_\psi(z \mid x)`.
        decoder: maps (batch, latent) to (batch, \*shape): logits (Bernoulli) or the mean (Gaussian).
        likelihood: ``"bernoulli"`` or ``"gaussian"`` (module docstring).
        log_scale: the starting value of :math:`\log s` for the Gaussian decoder (learned).
        noise: what :meth:`sample` returns by default: the decoder's means (False) or full draws (True).
        bound_samples: the :math:`k` of the importance-weighted bound that :meth:`log_prob` returns.

    A VAE satisfies the course's model contract (:mod:`dgm_course.contract`) with a bound: its ``log_prob`` is
    the IWAE bound :math:`\mathcal L_k \le \log p_\theta(x)` (in expectation), its objective the negative ELBO.
    """

    density = "bound"
    evaluations = 1  # the decoder, once

    def __init__(self, encoder: nn.Module, decoder: nn.Module, shape: tuple[int, ...], latent: int,
                 likelihood: str = "bernoulli", log_scale: float = -1.0, *, noise: bool = False,
                 bound_samples: int = 256) -> None:
        super().__init__()
        one_of(likelihood, LIKELIHOODS, "likelihood")
        self.encoder, self.decoder = encoder, decoder
        self.shape, self.latent, self.likelihood = tuple(shape), positive_int(latent, "latent"), likelihood
        self.log_scale = nn.Parameter(torch.tensor(float(log_scale))) if likelihood == "gaussian" else None
        self.noise, self.bound_samples = bool(noise), positive_int(bound_samples, "bound_samples")

    # --- the two networks ---------------------------------------------------------------------------
    def _log_scale(self) -> Tensor:
        r""":math:`\log s`, the Gaussian decoder's learned log standard deviation."""
        if self.log_scale is None:
            raise ValueError("a Bernoulli decoder has no scale; log_scale belongs to likelihood='gaussian'")
        return self.log_scale

    def check(self, x: Tensor) -> Tensor:
        r"""Validate a batch: shape (batch, \*shape), finite, and binary for a Bernoulli decoder."""
        x = as_images(x, self.shape)
        same_dtype(x, self)
        if self.likelihood == "gaussian" and float(x.min()) >= 0 and float(x.max()) > 1 \
                and bool((x == x.round()).all()):
            raise ValueError(f"x looks like 8-bit grey levels (whole numbers up to {float(x.max()):.0f}); the course's "
                             "Gaussian decoders model images in [0, 1]: divide by 255 (and dequantize)")
        if self.likelihood == "bernoulli" and not ((x == 0) | (x == 1)).all():
            raise ValueError("a Bernoulli decoder models binary pixels, but x holds values other than 0 and 1 "
                             f"(in [{float(x.min()):.3g}, {float(x.max()):.3g}]); binarize grey levels with "
                             "dgm_course.data.images.binarize, or use likelihood='gaussian'")
        return x

    def encode(self, x: Tensor) -> tuple[Tensor, Tensor]:
        r"""The mean :math:`\mu_\psi(x)` and log-variance :math:`\log\sigma^2_\psi(x)` of :math:`q_\psi(z \mid x)`."""
        mean, log_var = self.encoder(x).chunk(2, dim=1)
        return mean, log_var

    def decode(self, z: Tensor) -> Tensor:
        r"""The decoder's mean :math:`\mathbb E[x \mid z]`: pixel probabilities (Bernoulli) or :math:`g_\theta(z)`."""
        out = self.decoder(z)
        return torch.sigmoid(out) if self.likelihood == "bernoulli" else out

    def log_likelihood(self, x: Tensor, z: Tensor) -> Tensor:
        r""":math:`\log p_\theta(x \mid z)` per example; ``z`` may carry extra leading sample dimensions
        (shape (..., batch, latent)), which broadcast against ``x``."""
        lead = z.shape[:-1]
        out = self.decoder(z.reshape(-1, self.latent)).reshape(*lead, *self.shape)
        x = x.expand(*lead, *self.shape)
        flat_x, flat_out = x.reshape(-1, *self.shape), out.reshape(-1, *self.shape)
        if self.likelihood == "bernoulli":
            values = bernoulli_log_prob(flat_x, flat_out)
        else:
            values = gaussian_log_prob(flat_x, flat_out, 2 * self._log_scale())
        return values.reshape(lead)

    # --- the bounds -----------------------------------------------------------------------------------
    def elbo_terms(self, x: Tensor, samples: int = 1, generator: torch.Generator | None = None
                   ) -> tuple[Tensor, Tensor]:
        r"""The two terms of the ELBO per example: the reconstruction term
        :math:`\mathbb E_q[\log p_\theta(x \mid z)]` (a ``samples``-draw reparameterized average) and
        :math:`\mathrm{KL}(q_\psi(z \mid x) \| p_Z)` (closed form)."""
        x, samples = self.check(x), positive_int(samples, "samples")
        mean, log_var = self.encode(x)
        z = reparameterize(mean.expand(samples, *mean.shape), log_var.expand(samples, *log_var.shape), generator)
        return self.log_likelihood(x, z).mean(dim=0), gaussian_kl(mean, log_var)

    def elbo(self, x: Tensor, samples: int = 1, generator: torch.Generator | None = None) -> Tensor:
        r"""The evidence lower bound per example, in nats,

        .. math::
            \mathcal L(x) = \mathbb E_{q_\psi(z \mid x)}[\log p_\theta(x \mid z)]
            - \mathrm{KL}\big(q_\psi(z \mid x)\,\|\,p_Z\big),

        the first term a ``samples``-draw reparameterized average, the second in closed form (:meth:`elbo_terms`)."""
        reconstruction, kl = self.elbo_terms(x, samples, generator)
        return reconstruction - kl

    def loss(self, x: Tensor, beta: float = 1.0) -> Tensor:
        r"""The training loss: minus the batch mean of :math:`\mathbb E_q[\log p(x \mid z)] - \beta\,\mathrm{KL}`
        (:math:`\beta = 1`: the negative ELBO; other values weight the KL term, as in the :math:`\beta`-VAE)."""
        reconstruction, kl = self.elbo_terms(x)
        return -(reconstruction - beta * kl).mean()

    def objective(self, steps: int) -> Callable[[Tensor], Tensor]:
        """The training loss, whatever the run's length: the negative ELBO, :meth:`loss`."""
        return self.loss

    def log_prob(self, x: Tensor) -> Tensor:
        r"""The importance-weighted bound :math:`\mathcal L_k(x)` with :math:`k` = ``bound_samples``, a lower bound
        on :math:`\log p_\theta(x)` in expectation (:meth:`iwae_bound`)."""
        return self.iwae_bound(x, self.bound_samples)

    def iwae_bound(self, x: Tensor, k: int, chunk: int = 500, generator: torch.Generator | None = None) -> Tensor:
        r"""The importance-weighted bound per example, in nats,

        .. math::
            \mathcal L_k(x) = \mathbb E\Big[\log \frac1k \sum_{i=1}^k
            \frac{p_\theta(x \mid z_i)\,p_Z(z_i)}{q_\psi(z_i \mid x)}\Big],

        estimated with one set of :math:`k` draws :math:`z_i \sim q_\psi(z \mid x)`, taken ``chunk`` at a time so that
        memory stays bounded for large :math:`k`."""
        x = self.check(x)
        k, chunk = positive_int(k, "k"), positive_int(chunk, "chunk")
        mean, log_var = self.encode(x)
        log_w = []
        for start in range(0, k, chunk):
            m = min(chunk, k - start)
            z = reparameterize(mean.expand(m, *mean.shape), log_var.expand(m, *log_var.shape), generator)
            log_q = gaussian_log_prob(z.reshape(-1, self.latent), mean.repeat(m, 1), log_var.repeat(m, 1))
            log_p = standard_normal_log_prob(z.reshape(-1, self.latent))
            log_w.append(self.log_likelihood(x, z) + (log_p - log_q).reshape(m, -1))
        return log_mean_exp(torch.cat(log_w), dim=0)

    def evaluate(self, x: Tensor, k: int, seed: int = 1) -> tuple[float, float, float]:
        r"""Test scores on ``x``, in nats per example: the mean ELBO (10 draws each), the IWAE estimate of the
        negative log-likelihood :math:`-\mathcal L_k` (an upper bound on it in expectation) and its standard error
        over the examples. The draws come from one generator seeded with ``seed`` (through
        :func:`~dgm_course.budget.seed`); the ELBO decodes 2,500 x 10 examples at a time, the IWAE bound 25,000
        (for k <= 500; 50 k for larger k)."""
        k = positive_int(k, "k")
        gen = torch.Generator().manual_seed(budget.seed(seed))
        with torch.no_grad():
            elbo = torch.cat([self.elbo(part, samples=10, generator=gen) for part in x.split(2500)])
            parts = x.split(max(1, 25_000 // min(k, 500)))
            iwae = torch.cat([self.iwae_bound(part, k, generator=gen) for part in parts])
        return float(elbo.mean()), float(-iwae.mean()), float(iwae.std() / math.sqrt(len(x)))

    # --- generating -----------------------------------------------------------------------------------
    def sample(self, n: int, generator: torch.Generator | None = None, noise: bool | None = None) -> Tensor:
        r"""``n`` images from :math:`z \sim \mathcal N(0, I)`: the decoder's means :math:`\mathbb E[x \mid z]`
        (what VAE papers show), or with ``noise`` a full draw :math:`x \sim p_\theta(x \mid z)` (``None``: the
        VAE's ``noise``)."""
        mean = self.decode(latent.draw(n, self.latent, next(self.parameters()), generator))
        if not (self.noise if noise is None else noise):
            return mean
        if self.likelihood == "bernoulli":
            return torch.bernoulli(mean, generator=generator)
        eps = torch.randn(mean.shape, generator=generator, dtype=mean.dtype, device=mean.device)
        return mean + torch.exp(self._log_scale()) * eps

    def reconstruct(self, x: Tensor) -> Tensor:
        r"""The decoder's mean at the encoder's mean, :math:`\mathbb E[x \mid z = \mu_\psi(x)]`."""
        return self.decode(self.encode(self.check(x))[0])


def mlp_vae(shape: tuple[int, ...], latent: int = 2, hidden: int = 256, depth: int = 2,
            likelihood: str = "bernoulli", **settings: Any) -> VAE:
    """A VAE whose encoder and decoder are MLPs on the flattened image (ReLU, ``depth`` hidden layers); ``settings``
    go to :class:`VAE` (``noise``, ``bound_samples``)."""
    shape = tuple(shape)
    d = math.prod(shape)
    encoder = nn.Sequential(nn.Flatten(), mlp(d, 2 * latent, hidden, depth))
    decoder = nn.Sequential(mlp(latent, d, hidden, depth), nn.Unflatten(1, shape))
    return VAE(encoder, decoder, shape, latent, likelihood, **settings)


def conv_vae(shape: tuple[int, ...], latent: int = 16, channels: int = 32, hidden: int = 256,
             likelihood: str = "bernoulli", **settings: Any) -> VAE:
    """A convolutional VAE for images (c, h, w) with h and w divisible by 4: two stride-2 convolutions
    (``channels``, then twice as many) and a dense layer of ``hidden`` in the encoder, the mirror image
    with transposed convolutions in the decoder; ``settings`` go to :class:`VAE` (``noise``, ``bound_samples``)."""
    shape = tuple(shape)
    if len(shape) != 3 or shape[1] % 4 or shape[2] % 4:
        raise ValueError(f"conv_vae needs an image shape (c, h, w) with h and w divisible by 4; got {shape}")
    c, h, w = shape
    small = (2 * channels, h // 4, w // 4)
    flat = math.prod(small)
    encoder = nn.Sequential(
        nn.Conv2d(c, channels, 4, stride=2, padding=1), nn.ReLU(),
        nn.Conv2d(channels, 2 * channels, 4, stride=2, padding=1), nn.ReLU(),
        nn.Flatten(), nn.Linear(flat, hidden), nn.ReLU(), nn.Linear(hidden, 2 * latent))
    decoder = nn.Sequential(
        nn.Linear(latent, hidden), nn.ReLU(), nn.Linear(hidden, flat), nn.ReLU(), nn.Unflatten(1, small),
        nn.ConvTranspose2d(2 * channels, channels, 4, stride=2, padding=1), nn.ReLU(),
        nn.ConvTranspose2d(channels, c, 4, stride=2, padding=1))
    return VAE(encoder, decoder, shape, latent, likelihood, **settings)
