r"""Variational autoencoders: the bounds (:mod:`.bounds`), the models (:mod:`.models`) and the
linear-Gaussian model where the bounds can be checked against the exact evidence (:mod:`.linear`)."""

from .bounds import (
    bernoulli_log_prob,
    gaussian_kl,
    gaussian_log_prob,
    log_mean_exp,
    reparameterize,
    standard_normal_log_prob,
)
from .linear import kl_to_posterior, linear_gaussian_vae, log_evidence, posterior
from .models import LIKELIHOODS, VAE, conv_vae, mlp_vae

__all__ = ["LIKELIHOODS", "VAE", "bernoulli_log_prob", "conv_vae", "gaussian_kl", "gaussian_log_prob",
           "kl_to_posterior", "linear_gaussian_vae", "log_evidence", "log_mean_exp", "mlp_vae", "posterior",
           "reparameterize", "standard_normal_log_prob"]
