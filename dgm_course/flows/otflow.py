r"""OT-Flow (Onken et al. 2021): a continuous flow that moves mass along the gradient of a potential.

The velocity is :math:`v(x, t) = -\nabla_x \Phi(x, t)` for a scalar potential on :math:`s = (x, t)`,

.. math::
    \Phi(s) = w^\top N(s) + \tfrac12 s^\top A s + b^\top s,
    \qquad N(s) = u_0 + \eta\,\sigma(K_1 u_0 + b_1),\quad u_0 = \sigma(K_0 s + b_0),

a two-layer ResNet with :math:`\sigma(z) = \log\cosh z` (so :math:`\sigma' = \tanh`,
:math:`\sigma'' = 1 - \tanh^2`) and a symmetric :math:`A`. Optimal transport for the kinetic energy has
exactly this form, with :math:`\Phi` solving the Hamilton-Jacobi-Bellman equation
:math:`\partial_t \Phi - \tfrac12\|\nabla_x\Phi\|^2 = 0`. Training adds to the NLL the
transport cost :math:`\int_0^1 \tfrac12\|v\|^2 dt` and the HJB residual along the trajectories.

The trace needed by the instantaneous change of variables, :math:`\operatorname{tr}\partial v/\partial x
= -\Delta_x\Phi`, is computed in closed form, with :math:`E` the first :math:`d`
columns of :math:`K_0` and :math:`J = K_1 \operatorname{diag}(\sigma'(K_0 s + b_0)) E`:

.. math::
    \Delta_x \Phi = \sum_j \sigma''(K_0 s + b_0)_j\, g_j \|E_{j\cdot}\|^2
    + \eta \sum_k \sigma''(K_1 u_0 + b_1)_k\, w_k \|J_{k\cdot}\|^2 + \operatorname{tr} A_{xx},

where :math:`g = w + \eta K_1^\top(\sigma'(K_1 u_0 + b_1) \odot w)` is :math:`\partial\Phi/\partial u_0`:
no backward pass, and exact in any dimension.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable

import torch
from torch import Tensor, nn

from .. import latent, ode
from .._checks import positive_int
from .base import Flow
from .cnf import CNF


class Potential(nn.Module):
    r"""The potential :math:`\Phi(x, t)` of the module docstring, with ``width`` hidden units and a
    low-rank :math:`A = B^\top B` of rank ``rank``; its gradient and :math:`x`-Laplacian in closed form."""

    def __init__(self, dim: int, width: int = 32, rank: int = 10, step: float = 1.0) -> None:
        super().__init__()
        self.dim, width = positive_int(dim, "dim"), positive_int(width, "width")
        rank = min(positive_int(rank, "rank"), dim + 1)
        self.step = float(step)  # eta, the ResNet step
        self.K0 = nn.Linear(dim + 1, width)
        self.K1 = nn.Linear(width, width)
        self.w = nn.Parameter(torch.ones(width) / width)
        self.B = nn.Parameter(torch.randn(rank, dim + 1) * 0.1)
        self.b = nn.Parameter(torch.zeros(dim + 1))

    @staticmethod
    def _s(t: Tensor | float, x: Tensor) -> Tensor:
        t = torch.as_tensor(t, dtype=x.dtype, device=x.device)
        t = t.expand(len(x)) if t.ndim == 0 else t.reshape(len(x))
        return torch.cat([x, t[:, None]], dim=1)

    @property
    def A(self) -> Tensor:
        r"""The symmetric matrix :math:`A = B^\top B` of rank at most ``rank``."""
        return self.B.T @ self.B

    def forward(self, t: Tensor | float, x: Tensor) -> Tensor:
        r""":math:`\Phi(x, t)` per row, shape (batch,)."""
        s = self._s(t, x)
        u0 = _logcosh(self.K0(s))
        u1 = u0 + self.step * _logcosh(self.K1(u0))
        return u1 @ self.w + 0.5 * ((s @ self.A) * s).sum(dim=1) + s @ self.b

    def gradient_and_laplacian(self, t: Tensor | float, x: Tensor) -> tuple[Tensor, Tensor]:
        r""":math:`\nabla_s\Phi` (shape (batch, dim + 1); the last column is :math:`\partial_t\Phi`) and
        :math:`\Delta_x\Phi` (shape (batch,)), by the formulas of the module docstring."""
        s = self._s(t, x)
        z0 = self.K0(s)
        tanh0 = torch.tanh(z0)
        z1 = self.K1(_logcosh(z0))
        tanh1 = torch.tanh(z1)
        g = self.w + self.step * (tanh1 * self.w) @ self.K1.weight  # dPhi/du0, (batch, width)
        A = self.A
        grad = (tanh0 * g) @ self.K0.weight + s @ A + self.b
        E = self.K0.weight[:, : self.dim]  # (width, dim)
        J = self.K1.weight @ (tanh0[:, :, None] * E)  # (batch, width, dim): K1 diag(tanh0) E per row
        laplacian = (((1 - tanh0**2) * g) @ (E**2).sum(dim=1)
                     + self.step * ((1 - tanh1**2) * self.w * (J**2).sum(dim=2)).sum(dim=1)
                     + torch.diagonal(A)[: self.dim].sum())
        return grad, laplacian


def _logcosh(z: Tensor) -> Tensor:
    r""":math:`\log\cosh z`, stable for large :math:`|z|`: :math:`|z| + \log(1 + e^{-2|z|}) - \log 2`."""
    a = z.abs()
    return a + torch.log1p(torch.exp(-2 * a)) - math.log(2)


class OTField(nn.Module):
    r"""The OT-Flow velocity :math:`v(x, t) = -\nabla_x\Phi(x, t)`, with the closed-form divergence
    :math:`\nabla\cdot v = -\Delta_x\Phi` that :class:`~dgm_course.flows.cnf.CNF` uses as its exact trace."""

    def __init__(self, dim: int, width: int = 32, rank: int = 10) -> None:
        super().__init__()
        self.dim = positive_int(dim, "dim")
        self.potential = Potential(dim, width, rank)

    def forward(self, t: Tensor | float, x: Tensor) -> Tensor:
        r"""The velocity :math:`-\nabla_x\Phi(x, t)` at the points ``x`` (batch, dim)."""
        return -self.potential.gradient_and_laplacian(t, x)[0][:, : self.dim]

    def velocity_and_divergence(self, t: Tensor | float, x: Tensor) -> tuple[Tensor, Tensor]:
        r"""The velocity and its divergence :math:`-\Delta_x\Phi(x, t)`, both in closed form."""
        grad, laplacian = self.potential.gradient_and_laplacian(t, x)
        return -grad[:, : self.dim], -laplacian

    def hjb_residual(self, t: Tensor | float, x: Tensor) -> Tensor:
        r""":math:`\partial_t\Phi - \tfrac12\|\nabla_x\Phi\|^2` per row (zero for an optimal potential)."""
        grad, _ = self.potential.gradient_and_laplacian(t, x)
        return grad[:, -1] - 0.5 * (grad[:, : self.dim] ** 2).sum(dim=1)


class OTFlow(Flow):
    """An OT-Flow: :class:`OTField` in a :class:`~dgm_course.flows.cnf.CNF` solved by a fixed-step method, trained by
    :func:`otflow_loss` with the weights ``cost`` and ``hjb``."""

    def __init__(self, dim: int, width: int = 32, rank: int = 10, steps: int = 8, method: str = "rk4",
                 cost: float = 1.0, hjb: float = 1.0) -> None:
        super().__init__(CNF(OTField(dim, width, rank), dim, method=method, steps=steps))
        if not (cost >= 0 and hjb >= 0):
            raise ValueError(f"the weights cost and hjb must be >= 0; got {cost!r} and {hjb!r}")
        self.cost, self.hjb = float(cost), float(hjb)

    def objective(self, steps: int) -> Callable[[Tensor], Tensor]:
        """The OT-Flow objective of a batch with the flow's weights (:func:`otflow_loss`)."""
        # a partial, not a lambda: fit's checkpoint fingerprint reads the weights from it
        return functools.partial(otflow_loss, self, cost=self.cost, hjb=self.hjb)


def otflow(dim: int, width: int = 32, rank: int = 10, steps: int = 8, method: str = "rk4", cost: float = 1.0,
           hjb: float = 1.0) -> OTFlow:
    """An :class:`OTFlow`: :class:`OTField` in a :class:`~dgm_course.flows.cnf.CNF` solved by a fixed-step method."""
    return OTFlow(dim, width, rank, steps, method, cost, hjb)


def otflow_loss(flow: Flow, x: Tensor, cost: float = 1.0, hjb: float = 1.0) -> Tensor:
    r"""The OT-Flow objective on a batch ``x``, with :math:`\alpha_L` = ``cost`` and :math:`\alpha_R` = ``hjb``:

    .. math::
        \mathbb E_x\Big[-\log p_\theta(x) + \alpha_L \int_0^1 \tfrac12\|v(z_t, t)\|^2 dt
        + \alpha_R \int_0^1 \big|\partial_t\Phi - \tfrac12\|\nabla_x\Phi\|^2\big|\,dt\Big],

    all three integrals solved together along the trajectory from the data (:math:`t=1`) to the latent
    (:math:`t=0`) with the flow's fixed-step solver.
    """
    bijection = flow.bijection
    if not isinstance(bijection, CNF) or not isinstance(bijection.field, OTField):
        raise ValueError("otflow_loss needs a Flow built by otflow() (a CNF whose field is an OTField)")
    if bijection.method not in ode.SOLVERS:
        raise ValueError(f"otflow_loss integrates with a fixed-step method; the flow has {bijection.method!r}")
    field, d = bijection.field, bijection.dim
    bijection._check(x)

    def rhs(t: Tensor, state: Tensor) -> Tensor:
        z = state[:, :d]
        grad, laplacian = field.potential.gradient_and_laplacian(t, z)
        v = -grad[:, :d]
        residual = grad[:, -1] - 0.5 * (v**2).sum(dim=1)
        return torch.cat([v, -laplacian[:, None], 0.5 * (v**2).sum(dim=1, keepdim=True), residual.abs()[:, None]], 1)

    state = torch.cat([x, x.new_zeros(len(x), 3)], dim=1)
    state = ode.solve(rhs, state, 1.0, 0.0, bijection.steps, bijection.method)
    z, logabsdet = state[:, :d], state[:, d]
    # integrating from 1 down to 0 accumulates minus the time integrals
    transport, residual = -state[:, d + 1], -state[:, d + 2]
    nll = -(latent.log_prob(z) + logabsdet)
    return (nll + cost * transport + hjb * residual).mean()
