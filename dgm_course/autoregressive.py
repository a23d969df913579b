r"""Autoregressive models: an exact likelihood by the chain rule, one conditional at a time.

Any density factorises along an order :math:`\pi` of the coordinates (``eq-chain-rule``):

.. math::
    p(x) = \prod_{i=1}^d p\big(x_{\pi(i)} \mid x_{\pi(1)}, \dots, x_{\pi(i-1)}\big).

MADE (Germain et al. 2015) computes all :math:`d` conditionals in one pass of an MLP whose weights are masked so
that output :math:`\pi(i)` depends only on the inputs before it in the order: each unit :math:`k` gets a degree
:math:`m(k)`; the inputs have degrees :math:`1, \dots, d` (by position in the order), hidden units degrees in
:math:`\{\min m_{\text{prev}}, \dots, d - 1\}`, and a weight from :math:`k'` to :math:`k` is kept when
:math:`m(k) \ge m(k')` between hidden layers and :math:`m(k) > m(k')` into the outputs (``eq-made-masks``). The
Jacobian of the outputs with respect to the inputs is then strictly triangular in the order. Here the conditionals
are Bernoulli (binary images), the outputs their logits; sampling takes :math:`d` passes, one coordinate each.
Training over several orders, resampled during training, is the order-agnostic variant.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from . import budget, latent
from ._checks import positive_int


class MaskedLinear(nn.Linear):
    """A linear layer whose weight is multiplied by a fixed 0/1 mask of its shape (out, in)."""

    def __init__(self, in_features: int, out_features: int) -> None:
        super().__init__(in_features, out_features)
        self.register_buffer("mask", torch.ones(out_features, in_features))

    def set_mask(self, mask: Tensor) -> None:
        if mask.shape != self.weight.shape:
            raise ValueError(f"mask must have the weight's shape {tuple(self.weight.shape)}; got {tuple(mask.shape)}")
        self.mask.copy_(mask)

    def forward(self, x: Tensor) -> Tensor:
        return F.linear(x, self.weight * self.mask, self.bias)


def made_masks(order: Tensor, hidden: list[int], generator: torch.Generator) -> list[Tensor]:
    r"""The masks of ``eq-made-masks`` for the input ``order`` (a permutation of :math:`0..d-1`: ``order[j]`` is the
    position of input :math:`j` in the order) and hidden layer sizes ``hidden``; hidden degrees drawn uniformly."""
    d = len(order)
    degrees = [order + 1]  # degree of input j: its position in the order, 1..d
    for size in hidden:
        low = int(degrees[-1].min()) if d > 1 else 1
        degrees.append(torch.randint(min(low, d - 1), d, (size,), generator=generator) if d > 1
                       else torch.zeros(size, dtype=torch.long))
    masks = [(later[:, None] >= earlier[None, :]).float() for earlier, later in zip(degrees[:-1], degrees[1:])]
    masks.append(((order + 1)[:, None] > degrees[-1][None, :]).float())
    return masks


class MADE(nn.Module):
    r"""A masked autoencoder for distribution estimation over :math:`\{0, 1\}^d` (module docstring): ``depth`` hidden
    layers of ``hidden`` units, ``orders`` orders (1: the natural order; more: order-agnostic training, a new order
    drawn by :meth:`next_order`), Bernoulli conditionals. The order drawn last is not part of
    :func:`~dgm_course.training.fit`'s checkpoints."""

    def __init__(self, dim: int, hidden: int = 256, depth: int = 2, orders: int = 1, seed: int = 0) -> None:
        super().__init__()
        self.dim = positive_int(dim, "dim")
        sizes = [positive_int(hidden, "hidden")] * positive_int(depth, "depth")
        self.layers = nn.ModuleList(MaskedLinear(a, b) for a, b in zip([dim] + sizes, sizes + [dim]))
        self.generator = torch.Generator().manual_seed(budget.seed(seed))
        self.orders = [torch.arange(dim)] + [torch.randperm(dim, generator=self.generator)
                                             for _ in range(positive_int(orders, "orders") - 1)]
        self.register_buffer("order", self.orders[0].clone())
        self._masks = [made_masks(o, sizes, self.generator) for o in self.orders]
        self.use_order(0)

    def use_order(self, k: int) -> None:
        """Switch to the ``k``-th order (and its masks)."""
        if isinstance(k, bool) or not isinstance(k, int) or not 0 <= k < len(self.orders):
            raise ValueError(f"k must be an order's index, 0..{len(self.orders) - 1}; got {k!r}")
        self.order.copy_(self.orders[k])
        for layer, mask in zip(self.layers, self._masks[k]):
            layer.set_mask(mask)

    def next_order(self) -> None:
        """Order-agnostic training: switch to an order drawn at random among the model's."""
        self.use_order(int(torch.randint(len(self.orders), (1,), generator=self.generator)))

    def forward(self, x: Tensor) -> Tensor:
        """The logits of the :math:`d` conditionals, shape (batch, d)."""
        if x.ndim != 2 or x.shape[1] != self.dim:
            raise ValueError(f"x must have shape (batch, {self.dim}) (flatten images first); got {tuple(x.shape)}")
        h = x
        for layer in self.layers[:-1]:
            h = F.relu(layer(h))
        return self.layers[-1](h)

    def log_prob(self, x: Tensor) -> Tensor:
        r""":math:`\log p(x) = \sum_i \log p(x_i \mid x_{<i})` for binary ``x`` (batch, d), in nats."""
        if ((x != 0) & (x != 1)).any():
            raise ValueError("MADE's conditionals are Bernoulli: x must hold 0s and 1s (binarise images first)")
        return -F.binary_cross_entropy_with_logits(self(x), x, reduction="none").sum(dim=1)

    def nll(self, x: Tensor) -> Tensor:
        return -self.log_prob(x).mean()

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """``n`` samples, one coordinate at a time in the model's order: :math:`d` passes of the network."""
        weights = self.layers[0].weight
        x = torch.zeros(positive_int(n, "n"), self.dim, dtype=weights.dtype, device=weights.device)
        for j in torch.argsort(self.order).tolist():  # inputs by position in the order
            p = torch.sigmoid(self(x)[:, j])
            x[:, j] = (latent.rand_rows(p, generator) < p).to(x.dtype)
        return x
