"""Checkers for the exercises of the GAN and Wasserstein-GAN chapters."""

from __future__ import annotations

from typing import Any, Callable

import torch
from torch import Tensor, nn

from ..gan import discriminator_loss, gradient_penalty
from .core import Case, Report, compare


def check_discriminator_loss(loss: Callable[[Tensor, Tensor], Tensor]) -> Report:
    r"""Check a student's ``loss(real_logits, fake_logits)``, minus the GAN value
    :math:`-\mathbb E_x[\log\sigma(D(x))] - \mathbb E_z[\log(1 - \sigma(D(g(z))))]` computed from logits: on
    a hand-computable pair, random logits, and confident logits (±200) where taking the log of a sigmoid
    gives ``inf`` (1e-10, float64)."""
    gen = torch.Generator().manual_seed(0)
    d64: dict[str, Any] = dict(dtype=torch.float64)
    cases = [
        Case((torch.zeros(3, **d64), torch.zeros(2, **d64)), "all logits 0 (d = 1/2): the loss is log 4"),
        Case((torch.randn(7, generator=gen, **d64), torch.randn(5, generator=gen, **d64)),
             "random logits, 7 real and 5 fake (the two batches need not have the same size)"),
        Case((torch.tensor([200.0, 30.0], **d64), torch.tensor([-200.0, -30.0], **d64)),
             "a confident, correct discriminator (logits ±200): the loss must be finite and near 0"),
        Case((torch.tensor([-200.0], **d64), torch.tensor([200.0], **d64)),
             "a confident, wrong discriminator (logits ∓200): the loss must be finite, about 400"),
    ]
    return compare(loss, discriminator_loss, cases, name="discriminator_loss", atol=1e-10, rtol=1e-10,
                   hint="log sigma(l) = -softplus(-l) and log(1 - sigma(l)) = -softplus(l) never take the log "
                        "of 0; average each term over its own batch.")


def _reference_penalty(critic: nn.Module, real: Tensor, fake: Tensor, eps: Tensor) -> Tensor:
    return gradient_penalty(critic, real, fake, eps=eps)


def check_gradient_penalty(penalty: Callable[[nn.Module, Tensor, Tensor, Tensor], Tensor]) -> Report:
    r"""Check a student's ``penalty(critic, real, fake, eps)``:
    :math:`\frac1n\sum_i(\lVert\nabla c(\hat x_i)\rVert_2 - 1)^2` with
    :math:`\hat x_i = \epsilon_i x_i + (1 - \epsilon_i)\tilde x_i` and one weight :math:`\epsilon_i` per
    example (``eps`` has shape (n,)). Cases: a linear critic (the gradient is its weight vector, known in
    closed form), an MLP on points, a convolutional critic on images (norm over all of (c, h, w)); and the
    penalty must be differentiable in the critic's parameters, since the critic is trained on it."""
    gen = torch.Generator().manual_seed(0)
    d64 = torch.float64
    linear = nn.Linear(3, 1).double()
    with torch.no_grad():
        linear.weight.copy_(torch.tensor([[2.0, 0.0, 0.0]]))  # |grad| = 2 everywhere: penalty (2 - 1)^2 = 1
    torch.manual_seed(0)
    mlp = nn.Sequential(nn.Linear(2, 16), nn.Tanh(), nn.Linear(16, 1)).double()
    conv = nn.Sequential(nn.Conv2d(1, 4, 3, 2, 1), nn.Tanh(), nn.Flatten(), nn.Linear(4 * 4 * 4, 1)).double()
    cases = [
        Case((linear, torch.randn(4, 3, generator=gen, dtype=d64), torch.randn(4, 3, generator=gen, dtype=d64),
              torch.rand(4, generator=gen, dtype=d64)), "a linear critic with |weights| = 2: the penalty is 1"),
        Case((mlp, torch.randn(6, 2, generator=gen, dtype=d64), torch.randn(6, 2, generator=gen, dtype=d64),
              torch.rand(6, generator=gen, dtype=d64)), "an MLP critic on six 2-D points"),
        Case((conv, torch.rand(5, 1, 8, 8, generator=gen, dtype=d64), torch.rand(5, 1, 8, 8, generator=gen, dtype=d64),
              torch.rand(5, generator=gen, dtype=d64)),
             "a convolutional critic on five 1x8x8 images (one weight per image; norm over all pixels)"),
    ]
    report = compare(penalty, _reference_penalty, cases, name="gradient_penalty", atol=1e-10, rtol=1e-10,
                     hint="mix with eps reshaped to (n, 1, ...) so that it broadcasts over each example; take "
                          "the gradient of critic(x_hat).sum() with create_graph=True; flatten each example "
                          "before its norm.")
    report.checks += 1
    if report.passed:
        real, fake, eps = cases[1].args[1:]
        try:
            value = penalty(mlp, real, fake, eps)
            params = list(mlp.parameters())  # the last bias does not move the input gradient: unused, zero
            grads = torch.autograd.grad(value, params, allow_unused=True)
            expected = torch.autograd.grad(_reference_penalty(mlp, real, fake, eps), params, allow_unused=True)
            zero = [torch.zeros_like(q) for q in params]
            got = [z if g is None else g for g, z in zip(grads, zero)]
            wanted = [z if e is None else e for e, z in zip(expected, zero)]
            if not all(torch.allclose(g, e, atol=1e-10) for g, e in zip(got, wanted)):
                report.failures.append("the penalty's gradient with respect to the critic's parameters is wrong: "
                                       "compute the input gradient with create_graph=True")
        except RuntimeError as err:
            report.failures.append(f"the penalty cannot be differentiated with respect to the critic's parameters "
                                   f"({err}); compute the input gradient with create_graph=True")
    return report
