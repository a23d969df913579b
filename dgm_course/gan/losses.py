r"""The losses of GANs and Wasserstein GANs, each a line of code on the discriminator's logits or the critic's scores.

The discriminator :math:`d_\phi(x) = \sigma(D_\phi(x))` is given by its logit :math:`D_\phi(x)`, so that
:math:`\log d = -\operatorname{softplus}(-D)` and :math:`\log(1 - d) = -\operatorname{softplus}(D)` are
computed without taking the log of 0. The GAN value is

.. math::
    J_{\mathrm{GAN}}(\theta, \phi) = \mathbb E_x[\log d_\phi(x)] + \mathbb E_z[\log(1 - d_\phi(g_\theta(z)))],

maximised by the discriminator and minimised by the generator. The Wasserstein critic :math:`c_\phi` is a
real-valued function kept (approximately) 1-Lipschitz, by weight clipping or by the gradient penalty.
Every loss here is a quantity to *minimise*, averaged over the batch.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def discriminator_loss(real_logits: Tensor, fake_logits: Tensor) -> Tensor:
    r"""Minus the GAN value, for the discriminator:
    :math:`-\mathbb E_x[\log d(x)] - \mathbb E_z[\log(1 - d(g(z)))]` (binary cross-entropy, data = 1)."""
    return F.softplus(-real_logits).mean() + F.softplus(fake_logits).mean()


def minimax_generator_loss(fake_logits: Tensor) -> Tensor:
    r"""The generator's side of the minimax game, :math:`\mathbb E_z[\log(1 - d(g(z)))]`: its gradient
    vanishes when the discriminator confidently rejects the samples (:math:`d(g(z)) \to 0`), early in training,
    since with respect to each logit :math:`D = D(g(z))`,
    :math:`\partial_D \log\big(1 - \sigma(D)\big) = -\sigma(D) = -d \to 0`."""
    return -F.softplus(fake_logits).mean()


def nonsaturating_generator_loss(fake_logits: Tensor) -> Tensor:
    r"""The non-saturating generator loss :math:`-\mathbb E_z[\log d(g(z))]` of Goodfellow et al. (2014):
    the same fixed points, strong gradients exactly where the minimax loss saturates."""
    return F.softplus(-fake_logits).mean()


def critic_loss(real_scores: Tensor, fake_scores: Tensor) -> Tensor:
    r"""The Wasserstein critic's loss :math:`\mathbb E_z[c(g(z))] - \mathbb E_x[c(x)]`: minus the
    Kantorovich-Rubinstein objective :math:`\mathbb E_x[c(x)] - \mathbb E_z[c(g(z))]`, whose supremum over the
    1-Lipschitz critics :math:`c` is :math:`W_1(P_X, P_{g(Z)})`."""
    return fake_scores.mean() - real_scores.mean()


def wasserstein_generator_loss(fake_scores: Tensor) -> Tensor:
    r"""The WGAN generator's loss :math:`-\mathbb E_z[c(g(z))]`."""
    return -fake_scores.mean()


def gradient_penalty(critic: nn.Module, real: Tensor, fake: Tensor, generator: torch.Generator | None = None,
                     eps: Tensor | None = None) -> Tensor:
    r"""The gradient penalty of WGAN-GP (Gulrajani et al. 2017):

    .. math::
        \mathbb E_{\hat x}\big[(\lVert \nabla_{\hat x} c(\hat x)\rVert_2 - 1)^2\big], \qquad
        \hat x = \epsilon x + (1 - \epsilon)\,\tilde x, \quad \epsilon \sim U[0, 1],

    with one :math:`\epsilon` per example (broadcast over its features or pixels), and the norm taken
    over all non-batch dimensions. ``fake`` is detached: the penalty trains the critic only. ``eps`` (n,) gives
    the weights instead of drawing them (the exercise checker compares a student's penalty on fixed weights)."""
    if real.shape != fake.shape:
        raise ValueError(f"real and fake batches must have the same shape; got {tuple(real.shape)} and "
                         f"{tuple(fake.shape)}")
    shape = (len(real),) + (1,) * (real.ndim - 1)
    if eps is None:
        eps = torch.rand(shape, generator=generator, dtype=real.dtype, device=real.device)
    eps = eps.reshape(shape)
    mixed = (eps * real + (1 - eps) * fake.detach()).requires_grad_(True)
    (grad,) = torch.autograd.grad(critic(mixed).sum(), mixed, create_graph=True)
    return ((grad.flatten(1).norm(dim=1) - 1) ** 2).mean()


def clip_weights(module: nn.Module, c: float) -> None:
    r"""Weight clipping of the original WGAN (Arjovsky et al. 2017): every parameter into :math:`[-c, c]`,
    a crude way to bound the critic's Lipschitz constant."""
    with torch.no_grad():
        for p in module.parameters():
            p.clamp_(-c, c)
