r"""Autoregressive models: an exact likelihood by the chain rule, one conditional at a time.

Any density factorises along an order :math:`\pi` of the coordinates:

.. math::
    p(x) = \prod_{i=1}^d p\big(x_{\pi(i)} \mid x_{\pi(1)}, \dots, x_{\pi(i-1)}\big).

The three networks here compute all :math:`d` conditionals of a binary image in one pass, each by its own way of
hiding the future from every output; the conditionals are Bernoulli, the outputs their logits, and the likelihood,
the loss and the sampler (:math:`d` passes, one pixel each) are shared (:class:`Autoregressive`):

- :class:`MADE` (Germain et al. 2015): an MLP with masked weights;
- :class:`PixelCNN` (van den Oord, Kalchbrenner and Kavukcuoglu 2016): masked convolutions, and the gated two-stack
  version (van den Oord et al. 2016) without the blind spot;
- :class:`CausalTransformer`: self-attention with a causal mask over the pixel sequence, the language model's view.

:func:`dependence` reads with autograd which inputs each output depends on, to check a model's autoregressive
property.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import cast

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from . import budget, latent
from ._checks import one_of, positive_int


class Autoregressive(nn.Module):
    r"""Base class: a subclass sets ``dim`` and implements ``logits(x)`` (batch, d) -> (batch, d), in which output
    :math:`j` may depend only on the inputs before :math:`j` in ``order`` (a buffer: ``order[j]`` is input
    :math:`j`'s position; the natural order unless the subclass changes it). It satisfies the course's model contract
    (:mod:`dgm_course.contract`) with an exact density; a sample costs :math:`d` evaluations of the network."""

    density = "exact"
    dim: int

    order: Tensor  # a buffer: the order of the coordinates

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.dim = positive_int(dim, "dim")
        self.register_buffer("order", torch.arange(self.dim))

    def logits(self, x: Tensor) -> Tensor:
        r"""The logits (batch, d) of the conditionals :math:`p(x_j = 1 \mid x_{<j})` at ``x`` (batch, d), output
        :math:`j` depending only on the inputs before :math:`j` in ``order``; each subclass implements it."""
        raise NotImplementedError

    def forward(self, x: Tensor) -> Tensor:
        """The logits of the :math:`d` conditionals, shape (batch, d)."""
        if x.ndim != 2 or x.shape[1] != self.dim:
            raise ValueError(f"x must have shape (batch, {self.dim}) (flatten images first); got {tuple(x.shape)}")
        return self.logits(x)

    def log_prob(self, x: Tensor) -> Tensor:
        r""":math:`\log p(x) = \sum_i \log p(x_i \mid x_{<i})` for binary ``x`` (batch, d), in nats."""
        if ((x != 0) & (x != 1)).any():
            raise ValueError(f"{type(self).__name__}'s conditionals are Bernoulli: x must hold 0s and 1s "
                             "(binarise images first)")
        return -F.binary_cross_entropy_with_logits(self(x), x, reduction="none").sum(dim=1)

    def nll(self, x: Tensor) -> Tensor:
        """The mean negative log-likelihood of a batch (nats): the training loss."""
        return -self.log_prob(x).mean()

    def objective(self, steps: int) -> Callable[[Tensor], Tensor]:
        """The training loss, whatever the run's length: maximum likelihood, :meth:`nll`."""
        return self.nll

    @property
    def evaluations(self) -> int:
        """Network evaluations per sample: one per coordinate."""
        return self.dim

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """``n`` samples, one coordinate at a time in the model's order: :math:`d` passes of the network."""
        anchor = next(self.parameters())
        x = torch.zeros(positive_int(n, "n"), self.dim, dtype=anchor.dtype, device=anchor.device)
        for j in torch.argsort(self.order).tolist():  # inputs by position in the order
            p = torch.sigmoid(self(x)[:, j])
            x[:, j] = (latent.rand_rows(p, generator) < p).to(x.dtype)
        return x


def dependence(model: Autoregressive, points: int = 4) -> Tensor:
    r"""Which inputs each output depends on: the (d, d) 0/1 matrix whose entry :math:`(j, k)` is 1 when the
    Jacobian :math:`\partial\,\mathrm{logit}_j / \partial x_k` is non-zero at one of ``points`` random points of
    :math:`[0, 1]^d` (fixed seed). A ReLU can be off at one point and hide a dependence there, so the union over
    several points is read; a zero entry that is structural (a masked path) is zero at every point. The
    autoregressive property is that entry :math:`(j, k)` is 0 unless :math:`x_k` comes before :math:`x_j` in the
    order."""
    anchor = next(model.parameters())
    xs = torch.rand(positive_int(points, "points"), model.dim, generator=torch.Generator().manual_seed(0),
                    dtype=torch.float64).to(device=anchor.device, dtype=anchor.dtype)
    was_training = model.training
    model.eval()
    try:
        seen = sum((torch.autograd.functional.jacobian(lambda v: model(v[None])[0], x) != 0).to(torch.int64)
                   for x in xs)
    finally:
        model.train(was_training)
    return (seen > 0).to(torch.int64).cpu()


class MaskedLinear(nn.Linear):
    """A linear layer whose weight is multiplied by a fixed 0/1 mask of its shape (out, in)."""

    mask: Tensor  # a buffer: which weights are kept

    def __init__(self, in_features: int, out_features: int, bias: bool = True) -> None:
        super().__init__(in_features, out_features, bias=bias)
        self.register_buffer("mask", torch.ones(out_features, in_features))

    def set_mask(self, mask: Tensor) -> None:
        """Replace the mask by ``mask``, of the weight's shape (out, in)."""
        if mask.shape != self.weight.shape:
            raise ValueError(f"mask must have the weight's shape {tuple(self.weight.shape)}; got {tuple(mask.shape)}")
        self.mask.copy_(mask)

    def forward(self, x: Tensor) -> Tensor:
        r"""The masked linear map :math:`x\,(W \odot M)^\top + b` of ``x`` (..., in), shape (..., out)."""
        return F.linear(x, self.weight * self.mask, self.bias)


def made_masks(order: Tensor, hidden: list[int], generator: torch.Generator) -> list[Tensor]:
    r"""MADE's masks for the input ``order`` (a permutation of :math:`0..d-1`: ``order[j]`` is the position of input
    :math:`j` in the order) and hidden layer sizes ``hidden``. Input :math:`j` and output :math:`j` have the degree
    :math:`m(j)` = ``order[j] + 1``; the units of each hidden layer get degrees drawn uniformly from ``generator`` in
    :math:`\{\min m_{\text{prev}}, \dots, d - 1\}` (:math:`m_{\text{prev}}` the previous layer's degrees), and the
    mask of the weight from unit :math:`k'` to unit :math:`k` is

    .. math::
        M_{kk'} = \mathbf 1[m(k) \ge m(k')] \ \text{(into a hidden unit)}, \qquad
        M_{kk'} = \mathbf 1[m(k) > m(k')] \ \text{(into an output)}.

    Returns the masks (out, in) of the layers from the inputs to the outputs, ``len(hidden) + 1`` of them."""
    d = len(order)
    degrees = [order + 1]  # degree of input j: its position in the order, 1..d
    for size in hidden:
        low = int(degrees[-1].min()) if d > 1 else 1
        degrees.append(torch.randint(min(low, d - 1), d, (size,), generator=generator) if d > 1
                       else torch.zeros(size, dtype=torch.long))
    masks = [(later[:, None] >= earlier[None, :]).float() for earlier, later in zip(degrees[:-1], degrees[1:])]
    masks.append(((order + 1)[:, None] > degrees[-1][None, :]).float())
    return masks


class MADE(Autoregressive):
    r"""MADE (Germain et al. 2015): the chain rule in one pass of an MLP with masked weights.

    Each unit :math:`k` gets a degree :math:`m(k)`; the inputs have degrees :math:`1, \dots, d` (by position in the
    order), hidden units degrees in :math:`\{\min m_{\text{prev}}, \dots, d - 1\}`, and a weight from :math:`k'` to
    :math:`k` is kept when :math:`m(k) \ge m(k')` between hidden layers and :math:`m(k) > m(k')` into the outputs.
    The Jacobian of the outputs with respect to the inputs is then strictly triangular in the order. Training over
    several orders is the order-agnostic variant: a loss that calls :meth:`next_order` before each batch,
    ``lambda x: (made.next_order(), made.nll(x))[1]``.

    With ``direct=True`` a masked linear map from the inputs adds to the logits,

    .. math::
        \mathrm{logit}_j(x) = \mathrm{MLP}_j(x) + \sum_{k:\ m(k) < m(j)} A_{jk}\, x_k,

    with :math:`m(k)` input :math:`k`'s position in the order (``order[k] + 1``): a logistic regression of each pixel
    on the pixels before it (the fully visible sigmoid belief network, Neal 1992; Frey 1998) beside the network, the
    direct input-to-output connection of Germain et al.'s own code. Its weight is a :math:`d \times d` matrix of
    which the :math:`d(d-1)/2` entries below the order's diagonal are used (one more product a pass); it starts at
    zero (the plain MADE) and keeps the autoregressive property, its mask being the output layer's rule applied to
    the inputs' own degrees.

    Over :math:`\{0, 1\}^d`: ``depth`` hidden layers of ``hidden`` units, ``orders`` orders (1: the natural order;
    more: order-agnostic training, a new order drawn by :meth:`next_order`), Bernoulli conditionals. The order drawn
    last is not part of :func:`~dgm_course.training.fit`'s checkpoints."""

    def __init__(self, dim: int, hidden: int = 256, depth: int = 2, orders: int = 1, seed: int = 0,
                 direct: bool = False) -> None:
        super().__init__(dim)
        sizes = [positive_int(hidden, "hidden")] * positive_int(depth, "depth")
        self.layers = nn.ModuleList(MaskedLinear(a, b) for a, b in zip([dim] + sizes, sizes + [dim]))
        if not isinstance(direct, bool):
            raise ValueError(f"direct must be True or False; got {direct!r}")
        self.direct = MaskedLinear(dim, dim, bias=False) if direct else None
        if self.direct is not None:
            nn.init.zeros_(self.direct.weight)
        self.generator = torch.Generator().manual_seed(budget.seed(seed))
        self.orders = [torch.arange(dim)] + [torch.randperm(dim, generator=self.generator)
                                             for _ in range(positive_int(orders, "orders") - 1)]
        self._masks = [made_masks(o, sizes, self.generator) for o in self.orders]
        self.use_order(0)

    def use_order(self, k: int) -> None:
        """Switch to the ``k``-th order (and its masks)."""
        if isinstance(k, bool) or not isinstance(k, int) or not 0 <= k < len(self.orders):
            raise ValueError(f"k must be an order's index, 0..{len(self.orders) - 1}; got {k!r}")
        self.order.copy_(self.orders[k])
        for layer, mask in zip(self.layers, self._masks[k]):
            cast(MaskedLinear, layer).set_mask(mask)
        if self.direct is not None:  # input k reaches output j when k comes first in the order: m(k) < m(j)
            self.direct.set_mask((self.order[:, None] > self.order[None, :]).float())

    def next_order(self) -> None:
        """Order-agnostic training: switch to an order drawn at random among the model's."""
        self.use_order(int(torch.randint(len(self.orders), (1,), generator=self.generator)))

    def logits(self, x: Tensor) -> Tensor:
        """The logits (batch, d) at ``x`` (batch, d): the MLP with masked weights, plus the masked linear map of the
        inputs when ``direct=True``."""
        h = x
        for layer in self.layers[:-1]:
            h = F.relu(layer(h))
        return self.layers[-1](h) if self.direct is None else self.layers[-1](h) + self.direct(x)


def _odd_kernel(kernel: int) -> int:
    """``kernel`` if it is a positive odd size (a kernel with a centre pixel); a clear error otherwise."""
    if positive_int(kernel, "kernel") % 2 == 0:
        raise ValueError(f"kernel must be odd (a centre pixel); got {kernel}")
    return kernel


class MaskedConv2d(nn.Conv2d):
    """A square convolution (odd ``kernel``, same padding) whose weights at and after the centre in raster order are
    zero: ``kind`` "A" masks the centre too, "B" keeps it."""

    mask: Tensor  # a buffer: which kernel positions are kept

    def __init__(self, in_channels: int, out_channels: int, kernel: int, kind: str) -> None:
        _odd_kernel(kernel)
        super().__init__(in_channels, out_channels, kernel, padding=kernel // 2)
        one_of(kind, ("A", "B"), "kind")
        mask = torch.zeros(kernel, kernel)
        mask[: kernel // 2] = 1  # the rows above
        mask[kernel // 2, : kernel // 2 + (kind == "B")] = 1  # the centre row, left of the centre (and it, for B)
        self.register_buffer("mask", mask)

    def forward(self, x: Tensor) -> Tensor:
        """The convolution of ``x`` (n, in_channels, h, w) with the masked weights, same padding: shape
        (n, out_channels, h, w)."""
        return F.conv2d(x, self.weight * self.mask, self.bias, padding=self.padding)


def _shift_down(x: Tensor) -> Tensor:
    return F.pad(x, (0, 0, 1, 0))[:, :, :-1]


def _shift_right(x: Tensor) -> Tensor:
    return F.pad(x, (1, 0, 0, 0))[:, :, :, :-1]


class _GatedLayer(nn.Module):
    r"""One layer of the two stacks. Invariants (checked by the tests through ``dependence``): the vertical features
    at :math:`(i, j)` depend on rows :math:`< i` only, the horizontal ones on those and on row :math:`i` left of
    :math:`j`."""

    def __init__(self, channels: int, kernel: int) -> None:
        super().__init__()
        self.rows, self.reach = kernel // 2 + 1, kernel // 2  # (.half would hide nn.Module.half)
        self.vertical = nn.Conv2d(channels, 2 * channels, (self.rows, kernel))
        self.horizontal = nn.Conv2d(channels, 2 * channels, (1, self.reach + 1))
        self.link = nn.Conv2d(2 * channels, 2 * channels, 1)
        self.out = nn.Conv2d(channels, channels, 1)

    @staticmethod
    def gate(h: Tensor) -> Tensor:
        f, g = h.chunk(2, dim=1)
        return torch.tanh(f) * torch.sigmoid(g)

    def forward(self, v: Tensor, h: Tensor) -> tuple[Tensor, Tensor]:
        v_pre = self.vertical(F.pad(v, (self.reach, self.reach, self.rows - 1, 0)))  # rows i-rows+1..i of v
        h_pre = self.horizontal(F.pad(h, (self.reach, 0, 0, 0))) + self.link(v_pre)  # columns j-reach..j of h
        return self.gate(v_pre), h + self.out(self.gate(h_pre))


class PixelCNN(Autoregressive):
    r"""PixelCNN (van den Oord, Kalchbrenner and Kavukcuoglu 2016; gated, van den Oord et al. 2016): the chain rule over
    an image in raster order, with convolutions that see only the pixels before the one they predict.

    A masked convolution zeroes the kernel's weights at and after its centre in raster order: type A also at the
    centre (the first layer: a pixel must not see itself), type B not (later layers: the centre now holds features of
    earlier pixels only). Stacked, these leave a *blind spot*: a kernel of half-width :math:`h = k // 2` reaches
    :math:`h` columns to the right only by climbing a row, so the output at :math:`(r, c)` never sees the earlier
    pixels :math:`(r', c')` with :math:`r' < r` and :math:`c' - c > h\,(r - r')`, a wedge above and to the right,
    however deep the stack (``dependence`` shows it). The gated PixelCNN removes it with two stacks: a vertical one
    whose kernels span the window's full width in the rows above (on the input shifted down by one row), so its
    receptive field is a rectangle that grows with depth and has no hole, and a horizontal one that sees the pixels
    to the left in the current row (on the input shifted right by one pixel) plus the vertical stack's features,
    with a residual connection; each layer's activation is the gate :math:`\tanh(W_f * h) \odot \sigma(W_g * h)`.

    Over binary images of ``height`` x ``width`` (flattened in raster order, as every model of
    :mod:`dgm_course.autoregressive`): ``layers`` layers of ``channels`` features and odd ``kernel``; ``gated``
    selects the two-stack gated network, otherwise a stack of masked convolutions (one of type A,
    then type B) with ReLUs, which has the blind spot. Two 1x1 convolutions map the features to the logits."""

    def __init__(self, height: int, width: int, channels: int = 64, layers: int = 4, kernel: int = 5,
                 gated: bool = True) -> None:
        super().__init__(positive_int(height, "height") * positive_int(width, "width"))
        self.shape = (height, width)
        self.gated = bool(gated)
        positive_int(channels, "channels")
        _odd_kernel(kernel)
        if self.gated:
            self.v_in = nn.Conv2d(1, channels, (kernel // 2 + 1, kernel))  # on the input shifted one row down
            self.h_in = nn.Conv2d(1, channels, (1, kernel // 2 + 1))  # on the input shifted one pixel right
            self.stack = nn.ModuleList(_GatedLayer(channels, kernel) for _ in range(positive_int(layers, "layers")))
        else:
            self.stack = nn.ModuleList([MaskedConv2d(1, channels, kernel, "A")] + [
                MaskedConv2d(channels, channels, kernel, "B") for _ in range(positive_int(layers, "layers") - 1)])
        self.head = nn.Sequential(nn.ReLU(), nn.Conv2d(channels, channels, 1), nn.ReLU(), nn.Conv2d(channels, 1, 1))

    def logits(self, x: Tensor) -> Tensor:
        """The logits (batch, d) at ``x`` (batch, d), read as ``height`` x ``width`` images in raster order: the two
        gated stacks (or the stack of masked convolutions), then the two 1x1 convolutions."""
        image = x.reshape(-1, 1, *self.shape)
        if self.gated:
            k = self.v_in.kernel_size[1]
            v = self.v_in(F.pad(_shift_down(image), (k // 2, k // 2, k // 2, 0)))
            h = self.h_in(F.pad(_shift_right(image), (k // 2, 0, 0, 0)))
            for layer in self.stack:
                v, h = layer(v, h)
        else:
            h = image
            for i, layer in enumerate(self.stack):
                h = layer(h if i == 0 else F.relu(h))
        return self.head(h).flatten(1)


class CausalTransformer(Autoregressive):
    r"""A causal transformer over the pixel sequence: the language model's view of the chain rule.

    The image, flattened in raster order, is a sequence of :math:`d` bits. Position :math:`i` reads the sequence
    shifted right by one (a learnt start vector, then :math:`x_1, \dots, x_{d-1}`), embedded with a learnt position
    vector, and self-attention with the causal mask (position :math:`i` attends to positions :math:`\le i` only; the
    weights of the others are :math:`e^{-\infty} = 0`) gives it :math:`x_{<i}` and nothing else: its output is the
    logit of :math:`p(x_i = 1 \mid x_{<i})`. The layers are PyTorch's own (``nn.TransformerEncoderLayer``, pre-norm,
    no dropout); what this module adds is the shift, the mask and the Bernoulli head.

    A decoder-only transformer over binary vectors of length ``dim``: ``layers`` pre-norm layers of ``width``
    features and ``heads`` attention heads (``width`` divisible by ``heads``)."""

    mask: Tensor  # a buffer: the causal attention mask

    def __init__(self, dim: int, width: int = 64, heads: int = 4, layers: int = 2) -> None:
        super().__init__(dim)
        if positive_int(width, "width") % positive_int(heads, "heads"):
            raise ValueError(f"width must be divisible by heads; got width {width} and heads {heads}")
        self.embed = nn.Linear(1, width)  # a bit's embedding: x a + (1 - x) b, affine in x
        self.start = nn.Parameter(torch.zeros(width))
        self.position = nn.Parameter(0.02 * torch.randn(dim, width))
        layer = nn.TransformerEncoderLayer(width, heads, 4 * width, dropout=0.0, batch_first=True, norm_first=True)
        self.layers = nn.TransformerEncoder(layer, positive_int(layers, "layers"), enable_nested_tensor=False)
        self.norm = nn.LayerNorm(width)
        self.head = nn.Linear(width, 1)
        self.register_buffer("mask", nn.Transformer.generate_square_subsequent_mask(dim), persistent=False)

    def logits(self, x: Tensor) -> Tensor:
        r"""The logits (batch, d) at ``x`` (batch, d): the start vector and :math:`x_1, \dots, x_{d-1}` embedded, plus
        the position vectors, through the causal layers, the final layer norm and the head; output :math:`i` is the
        logit of :math:`p(x_i = 1 \mid x_{<i})`."""
        tokens = self.embed(x[:, :-1, None])  # x_1 .. x_{d-1}
        start = self.start.expand(x.shape[0], 1, -1)
        h = torch.cat([start, tokens], dim=1) + self.position
        h = self.layers(h, mask=self.mask.to(h.dtype), is_causal=True)
        return self.head(self.norm(h)).squeeze(-1)
