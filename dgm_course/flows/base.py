r"""Bijections, their composition, and a flow: a base distribution pushed through a bijection.

The contract (the package docstring, :mod:`dgm_course`): a :class:`Bijection` :math:`f` maps a batch ``x`` of shape
(batch, dim) to

- ``forward(x) -> (y, logabsdet)`` with :math:`y = f(x)` and ``logabsdet`` :math:`= \log|\det \nabla f(x)|`
  per sample, shape (batch,);
- ``inverse(y) -> (x, logabsdet)`` with :math:`x = f^{-1}(y)` and
  ``logabsdet`` :math:`= \log|\det \nabla f^{-1}(y)| = -\log|\det \nabla f(x)|`.

A :class:`Flow` reads its bijection as the map *from data to latent*, :math:`f = g^{-1}`, so that the
change of variables needs only ``forward``:

.. math::
    \log p_\theta(x) = \log p_Z(f(x)) + \log|\det \nabla f(x)|,

and sampling runs the inverse on latent draws :math:`z \sim \mathcal N(0, I)` (``invert``: the inverse without its
log-determinant, which a sample does not need).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch
from torch import Tensor, nn

from .. import latent
from .._checks import as_points, positive_int


class Bijection(nn.Module):
    r"""A differentiable bijection of :math:`\mathbb R^{dim}` with its log-determinant (see the module)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.dim = positive_int(dim, "dim")

    def _check(self, x: Tensor) -> None:
        """Raise a ``ValueError`` unless ``x`` has shape (batch, dim); cheap, so every layer calls it."""
        if x.ndim != 2 or x.shape[1] != self.dim:
            raise ValueError(
                f"{type(self).__name__} expects points of shape (batch, {self.dim}); got shape {tuple(x.shape)}"
            )

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:  # pragma: no cover - abstract
        r"""``(f(x), log|det ∇f(x)|)`` for ``x`` of shape (batch, dim) (the module docstring)."""
        raise NotImplementedError

    def inverse(self, y: Tensor) -> tuple[Tensor, Tensor]:  # pragma: no cover - abstract
        r"""``(f⁻¹(y), log|det ∇f⁻¹(y)|)`` for ``y`` of shape (batch, dim) (the module docstring)."""
        raise NotImplementedError

    def invert(self, y: Tensor) -> Tensor:
        r""":math:`f^{-1}(y)` alone, without its log-determinant (what a sample needs): ``inverse(y)[0]``, unless a
        bijection has a cheaper way (a continuous flow's solve without the divergence)."""
        return self.inverse(y)[0]

    @property
    def evaluations(self) -> int:
        """Evaluations of a network that a pass costs: one (a coupling's conditioner), none for a layer without a
        network (which says so), an ODE solver's evaluations for a continuous flow (for an adaptive solver, those of
        its last solve)."""
        return 1


class Compose(Bijection):
    r"""The composition :math:`f = f_K \circ \dots \circ f_1` of bijections of the same dimension.

    By the chain rule the Jacobian is a product, so the log-determinants add:

    .. math::
        \log|\det \nabla f(x)| = \sum_{k=1}^K \log|\det \nabla f_k(x_{k-1})|,
        \qquad x_0 = x,\ x_k = f_k(x_{k-1}).

    The inverse runs the layers backwards, :math:`f^{-1} = f_1^{-1} \circ \dots \circ f_K^{-1}`.
    """

    def __init__(self, layers: Iterable[Bijection]) -> None:
        layers = list(layers)
        if not layers:
            raise ValueError("Compose needs at least one bijection")
        dims = {layer.dim for layer in layers}
        if len(dims) != 1:
            raise ValueError(f"all bijections of a composition must share one dimension; got dims {sorted(dims)}")
        super().__init__(dims.pop())
        self.layers = nn.ModuleList(layers)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Each layer forward in order, their log-determinants added."""
        return self._cascade(x, [layer.forward for layer in self.layers])

    def inverse(self, y: Tensor) -> tuple[Tensor, Tensor]:
        """Each layer inverted, in reverse order, their log-determinants added."""
        return self._cascade(y, [layer.inverse for layer in reversed(self.layers)])

    def invert(self, y: Tensor) -> Tensor:
        """Each layer inverted without its log-determinant, in reverse order."""
        for layer in reversed(self.layers):
            assert isinstance(layer, Bijection)
            y = layer.invert(y)
        return y

    @property
    def evaluations(self) -> int:
        """The layers' evaluations, added."""
        return sum(layer.evaluations for layer in self.layers if isinstance(layer, Bijection))

    @staticmethod
    def _cascade(x: Tensor, maps: list) -> tuple[Tensor, Tensor]:
        """Apply ``maps`` in order, adding up their log-determinants (either direction)."""
        logabsdet = x.new_zeros(len(x))
        for f in maps:
            x, ld = f(x)
            logabsdet = logabsdet + ld
        return x, logabsdet


class Flow(nn.Module):
    r"""A normalizing flow: the latent :math:`Z \sim \mathcal N(0, I_d)` pushed forward by
    :math:`g = f^{-1}`, where :math:`f` = ``bijection`` maps data to latent.

    .. math::
        \log p_\theta(x) = \log p_Z(f(x)) + \log|\det \nabla f(x)|
        \qquad\text{(the change of variables)}

    Training minimises :meth:`nll`, the average negative log-likelihood of a batch. A flow satisfies the course's
    model contract (:mod:`dgm_course.contract`) with an exact density.
    """

    density = "exact"
    loc: Tensor  # a buffer: the base distribution's mean

    def __init__(self, bijection: Bijection) -> None:
        super().__init__()
        if not isinstance(bijection, Bijection):
            raise ValueError(f"Flow needs a Bijection; got {type(bijection).__name__}")
        self.bijection = bijection
        self.dim = bijection.dim
        # the base distribution's mean: zero, kept as a buffer so samples follow the flow's device and dtype
        self.register_buffer("loc", torch.zeros(self.dim))

    def forward(self, x: Tensor) -> Tensor:
        """The log-density of each row of ``x``, as :meth:`log_prob`."""
        return self.log_prob(x)

    def log_prob(self, x: Tensor) -> Tensor:
        """Log-density of each row of ``x`` (shape (batch, dim)); returns shape (batch,).

        Raises:
            ValueError: ``x`` is not (batch, dim) or holds NaN/inf.
        """
        x = as_points(x, dim=self.dim).to(self.loc.dtype)
        z, logabsdet = self.bijection(x)
        return latent.log_prob(z) + logabsdet

    def nll(self, x: Tensor) -> Tensor:
        r"""The loss: :math:`-\frac1n \sum_i \log p_\theta(x_i)` (nats per sample)."""
        return -self.log_prob(x).mean()

    def objective(self, steps: int) -> Callable[[Tensor], Tensor]:
        """The training loss, whatever the run's length: maximum likelihood, :meth:`nll`."""
        return self.nll

    @property
    def evaluations(self) -> int:
        """Network evaluations per sample: the bijection's (one pass, or an ODE solver's evaluations)."""
        return self.bijection.evaluations

    def sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        r"""Draw ``n`` points :math:`x = g(z) = f^{-1}(z)`, :math:`z \sim \mathcal N(0, I)`; shape (n, dim).

        Differentiable in the parameters; wrap in ``torch.no_grad()`` when only the points are needed.
        """
        return self.bijection.invert(self.loc + latent.draw(n, self.dim, self.loc, generator))
