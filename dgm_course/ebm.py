r"""Energy-based models: a density known up to its normalising constant, trained by persistent contrastive divergence.

An energy :math:`E_\theta: \mathbb R^d \to \mathbb R` defines :math:`p_\theta(x) = e^{-E_\theta(x)} / Z_\theta`,
:math:`Z_\theta = \int e^{-E_\theta}`, provided that :math:`Z_\theta < \infty`. Nothing in a network
guarantees it: an :class:`EnergyMLP` is Lipschitz, so :math:`E_\theta(x) \ge E_\theta(0) - c\lVert x\rVert`, but it may
fall linearly to :math:`-\infty` along some directions, and :math:`e^{-E_\theta}` is then not integrable on
:math:`\mathbb R^d`. On a bounded set :math:`B` the restriction :math:`e^{-E_\theta}\mathbf 1_B / Z_B`,
:math:`Z_B = \int_B e^{-E_\theta}`, is always a density (a continuous function on a compact set): that is the density
the 2-D functions below normalise and score (:func:`log_partition`, :func:`held_out_2d`). The gradient of the
log-likelihood has two phases:

.. math::
    \nabla_\theta \mathbb E_{p_{\mathrm{data}}}[\log p_\theta(x)]
    = -\mathbb E_{p_{\mathrm{data}}}[\nabla_\theta E_\theta(x)] + \mathbb E_{p_\theta}[\nabla_\theta E_\theta(x)],

since :math:`\nabla_\theta \log Z_\theta = -\mathbb E_{p_\theta}[\nabla_\theta E_\theta]`: lower the energy of the data
(positive phase), raise it where the model puts mass (negative phase). The model's samples come from Langevin
dynamics on :math:`\nabla_x \log p_\theta = -\nabla_x E_\theta` (:mod:`dgm_course.langevin`), run for a few steps from
a replay buffer of earlier samples: persistent chains, which carry on from one training step to the next (persistent
contrastive divergence, Tieleman 2008, with a buffer and 5 % fresh noise as Du & Mordatch 2019 use it). Hinton's
(2002) contrastive divergence CD-k starts its chains at the data batch instead; the functions here keep the family's
name (:func:`cd_loss`, :func:`contrastive_divergence`, :func:`train_cd`) but every chain of theirs is persistent.
:func:`cd_loss` is the surrogate whose gradient is that difference, plus Du & Mordatch's penalty on the squared
energies (weight :math:`\lambda`; the course's default 0.1, where their released code uses 1). In 2-D,
:func:`log_partition` computes :math:`\log Z_B` on a grid over a square :math:`B`, so the trained energy's density
restricted to :math:`B` can be normalised and scored like any other model of the course (:class:`EBM` holds the
energy, its buffer and its grid as one model of the course's contract). Score matching trains
the same energy with no sample from the model at all (:func:`score_matching_loss`, Hyvärinen 2005, exact or sliced; and
:func:`denoising_score_matching_loss`, Vincent 2011), since :math:`-\nabla_x E_\theta` does not involve
:math:`Z_\theta`.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

from . import budget, latent
from ._checks import as_points, one_of, positive_int
from .data import toy2d
from .langevin import langevin
from .metrics import held_out_nll, log_integrate_2d
from .nets import mlp
from .training import History, fit


class EnergyMLP(nn.Module):
    r"""An energy :math:`E_\theta(x)`: an MLP with smooth activations (Langevin dynamics needs its gradient in
    :math:`x`) from :math:`\mathbb R^d` to one number per row. Far from the origin SiLU acts as
    :math:`\max(u, 0)`, so the energy grows or falls about linearly along each ray: nothing makes
    :math:`\int e^{-E_\theta}` finite on :math:`\mathbb R^d` (see the module's note)."""

    def __init__(self, dim: int, hidden: int = 128, depth: int = 3) -> None:
        super().__init__()
        self.dim = positive_int(dim, "dim")
        self.net = mlp(dim, 1, hidden, depth, activation=nn.SiLU)

    def forward(self, x: Tensor) -> Tensor:
        r"""The energy :math:`E_\theta(x)` of each row of ``x`` (batch, dim); shape (batch,)."""
        if x.ndim != 2 or x.shape[1] != self.dim:
            raise ValueError(f"x must have shape (batch, {self.dim}); got {tuple(x.shape)}")
        return self.net(x).squeeze(1)

    def score(self, x: Tensor) -> Tensor:
        r""":math:`\nabla_x \log p_\theta(x) = -\nabla_x E_\theta(x)` (no graph kept to the parameters)."""
        with torch.enable_grad():
            y = x.detach().requires_grad_(True)
            (grad,) = torch.autograd.grad(self(y).sum(), y)
        return -grad


class ReplayBuffer:
    r"""Persistent Langevin chains: ``size`` points, started uniform on :math:`[-b, b]^d`; :meth:`draw` returns
    ``n`` of them with a share ``fresh`` (:math:`\rho`) replaced by new uniform points, :meth:`push` stores where they
    went. The buffer is not part of :func:`~dgm_course.training.fit`'s checkpoints: a resumed run starts with fresh
    chains.

    ``draws`` keeps count: for each chain, the number of draws it has been through since it started (uniform at
    construction, or renewed at a draw), updated by :meth:`push`; with ``k`` Langevin steps a draw, a chain has run
    ``k * draws`` steps. Its mean over the buffer estimates :func:`mean_chain_steps`. (No random number is drawn for
    the count: the buffer's stream is the same with or without it.)"""

    def __init__(self, dim: int, size: int = 10_000, bound: float = 4.0, fresh: float = 0.05,
                 generator: torch.Generator | None = None) -> None:
        if not 0 <= fresh <= 1:
            raise ValueError(f"fresh must be a share in [0, 1]; got {fresh!r}")
        if not bound > 0:
            raise ValueError(f"bound must be positive; got {bound!r}")
        self.dim, self.bound, self.fresh = positive_int(dim, "dim"), float(bound), float(fresh)
        self.generator = generator if generator is not None else torch.Generator().manual_seed(budget.seed(0))
        self.points = self._uniform(positive_int(size, "size"))
        self.draws = torch.zeros(len(self.points), dtype=torch.long)
        self.index: Tensor | None = None
        self._renewed: Tensor | None = None

    def _uniform(self, n: int) -> Tensor:
        return latent.uniform(n, self.dim, self.bound, torch.empty(0), self.generator)  # float32, on the CPU

    def draw(self, n: int) -> Tensor:
        """``n`` chains of the buffer, drawn without replacement, a share ``fresh`` of them renewed uniform."""
        n = positive_int(n, "n")
        if n > len(self.points):
            raise ValueError(f"cannot draw {n} points from a buffer of {len(self.points)}")
        self.index = torch.randperm(len(self.points), generator=self.generator)[:n]
        x = self.points[self.index].clone()
        renew = torch.rand(n, generator=self.generator) < self.fresh
        if renew.any():
            x[renew] = self._uniform(int(renew.sum()))
        self._renewed = renew
        return x

    def push(self, x: Tensor) -> None:
        """Store ``x``, the points of the last :meth:`draw` after their Langevin steps, where they were drawn from."""
        if self.index is None or self._renewed is None or len(x) != len(self.index):
            raise ValueError("push the points of the last draw, once")
        self.points[self.index] = x.detach().to(self.points)
        self.draws[self.index] = torch.where(self._renewed, 1, self.draws[self.index] + 1)
        self.index, self._renewed = None, None


def mean_chain_steps(chain_steps: int, steps: int, batch: int, buffer_size: int, fresh: float = 0.05) -> float:
    r"""The expected number of Langevin steps behind a chain of the replay buffer after ``steps`` training steps, each
    of which draws ``batch`` of the ``buffer_size`` chains, renews each drawn chain with probability ``fresh``
    (:math:`\rho`) and runs ``chain_steps`` (:math:`k`) steps on it:

    .. math::
        \mathbb E[\text{steps}] = \frac{k}{\rho}\Big(1 - \big(1 - \rho\,\tfrac{n}{N}\big)^R\Big)
        \;\xrightarrow[R \to \infty]{}\; \frac{k}{\rho},

    with :math:`n` = ``batch``, :math:`N` = ``buffer_size``, :math:`R` = ``steps``. A chain is drawn
    :math:`M \sim \mathrm{Bin}(R, n/N)` times; counting back from its last draw, each draw was a restart with
    probability :math:`\rho`, so the draws since its start number :math:`\min(G, M)`, :math:`G` geometric with mean
    :math:`1/\rho` (the uniform start counts as one), and :math:`\mathbb E[\min(G, M) \mid M] = (1 - (1-\rho)^M)/\rho`,
    :math:`\mathbb E[(1-\rho)^M] = (1 - \rho n/N)^R`. The renewals cap the mean length at :math:`k/\rho` however long
    training runs, where :math:`k\,Rn/N` (the draws of a chain times :math:`k`) would ignore them. ``fresh = 0``:
    :math:`k\,Rn/N`."""
    k, t = positive_int(chain_steps, "chain_steps"), positive_int(steps, "steps")
    q = positive_int(batch, "batch") / positive_int(buffer_size, "buffer_size")
    if not 0 <= fresh <= 1 or not q <= 1:
        raise ValueError(f"fresh must be a share in [0, 1] and batch <= buffer_size; got {fresh!r}, {batch}, "
                         f"{buffer_size}")
    if fresh == 0:
        return k * t * q
    return k * (1 - (1 - fresh * q) ** t) / fresh


def negative_samples(energy: EnergyMLP, buffer: ReplayBuffer, n: int, steps: int, step: float,
                     generator: torch.Generator | None = None) -> Tensor:
    r"""Short-run Langevin chains on :math:`-\nabla E_\theta` from ``n`` buffer points (``steps`` steps of size
    ``step``), stored back in the buffer; returned without a graph (the negative phase does not differentiate
    through the sampler)."""
    x = buffer.draw(n).to(next(energy.parameters()))  # the energy's device and dtype
    x = langevin(energy.score, x, step, steps, generator)
    buffer.push(x.cpu())
    return x.detach()


def _check_penalty(penalty: float) -> float:
    if not penalty >= 0:
        raise ValueError(f"penalty must be >= 0; got {penalty!r}")
    return penalty


def cd_loss(energy: EnergyMLP, data: Tensor, negatives: Tensor, penalty: float = 0.1) -> Tensor:
    r"""The contrastive-divergence surrogate :math:`\overline{E_\theta(x^+)} - \overline{E_\theta(x^-)} +
    \lambda\,\overline{E_\theta(x^+)^2 + E_\theta(x^-)^2}` on a data batch :math:`x^+` and model samples
    :math:`x^-`. Its gradient is
    :math:`\overline{\nabla_\theta E_\theta(x^+)} - \overline{\nabla_\theta E_\theta(x^-)}`, minus the sample
    estimate of the log-likelihood's gradient
    :math:`-\mathbb E_{p_{\mathrm{data}}}[\nabla_\theta E_\theta(x)] + \mathbb E_{p_\theta}[\nabla_\theta E_\theta(x)]`
    (whichever sampler gave the :math:`x^-`), plus the penalty's, which sets the energies' scale: the minimum of
    :math:`\pm e + \lambda e^2` is at :math:`e = \mp 1/(2\lambda)`. The penalty is Du & Mordatch's (2019): their
    objective is :math:`\alpha L_2 + L_{\mathrm{ML}}`, and their released code (``openai/ebm_code_release``,
    ``train.py``, flag ``l2_coeff``) weights it by 1, energies at about :math:`\pm 1/2`. The default ``penalty`` = 0.1
    lets them reach about :math:`\pm 5`."""
    _check_penalty(penalty)
    e_pos, e_neg = energy(data), energy(negatives.detach())
    return e_pos.mean() - e_neg.mean() + penalty * (e_pos**2 + e_neg**2).mean()


def contrastive_divergence(energy: EnergyMLP, buffer: ReplayBuffer, chain_steps: int = 20, step_size: float = 0.01,
                           penalty: float = 0.1) -> Callable[[Tensor], Tensor]:
    r"""The loss of one training step of persistent contrastive divergence (Tieleman 2008), for
    :func:`~dgm_course.training.fit`: on a data batch :math:`x^+`, :func:`cd_loss` with the negatives :math:`x^-` of
    ``chain_steps`` Langevin steps of size ``step_size`` from as many chains of ``buffer`` (:func:`negative_samples`),
    which carry on from where earlier steps left them (not from the data batch, as Hinton's CD-k would)."""
    positive_int(chain_steps, "chain_steps")
    _check_penalty(penalty)
    if not step_size > 0:
        raise ValueError(f"step_size must be a positive number; got {step_size!r}")

    def loss(x: Tensor) -> Tensor:
        return cd_loss(energy, x, negative_samples(energy, buffer, len(x), chain_steps, step_size), penalty)

    return loss


class EBM(nn.Module):
    r"""An energy-based model as a model of the course (:mod:`dgm_course.contract`): the ``energy``, trained by
    :func:`contrastive_divergence` from the chains of ``buffer`` (``chain_steps`` Langevin steps of size ``step_size``
    a training step, ``penalty`` :math:`\lambda`); sampled by ``sample_steps`` Langevin steps of size ``step_size``
    from fresh uniform points of the buffer's cube :math:`[-b, b]^d` (not from the buffer), so one sample costs
    ``sample_steps`` evaluations of the energy's gradient; its log-density (2-D only) is
    :math:`-E_\theta(x) - \log Z_B` with :math:`\log Z_B` by quadrature on a ``grid`` x ``grid`` grid over
    :math:`B = [-c, c]^2`, :math:`c` = ``grid_bound`` (:func:`log_partition`, recomputed at each call)."""

    density = "quadrature"

    def __init__(self, energy: EnergyMLP, buffer: ReplayBuffer, *, chain_steps: int = 20, step_size: float = 0.01,
                 penalty: float = 0.1, sample_steps: int = 200, grid_bound: float = 6.0, grid: int = 400) -> None:
        super().__init__()
        if buffer.dim != energy.dim:
            raise ValueError(f"the buffer's chains have dimension {buffer.dim} but the energy's points {energy.dim}")
        if not step_size > 0 or not grid_bound > 0:
            raise ValueError(f"step_size and grid_bound must be positive; got {step_size!r} and {grid_bound!r}")
        self.energy, self.buffer = energy, buffer
        self.chain_steps, self.step_size = positive_int(chain_steps, "chain_steps"), float(step_size)
        self.penalty, self.sample_steps = _check_penalty(penalty), positive_int(sample_steps, "sample_steps")
        self.grid_bound, self.grid = float(grid_bound), positive_int(grid, "grid")
        self.density = "quadrature" if energy.dim == 2 else "none"  # the grid is of the plane

    @property
    def evaluations(self) -> int:
        """Evaluations of the energy's gradient per sample: the Langevin steps."""
        return self.sample_steps

    def objective(self, steps: int) -> Callable[[Tensor], Tensor]:
        """The loss of one step of persistent contrastive divergence, whatever the run's length."""
        return contrastive_divergence(self.energy, self.buffer, self.chain_steps, self.step_size, self.penalty)

    def sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """``n`` points: ``sample_steps`` Langevin steps from uniform points of the buffer's cube."""
        start = latent.uniform(n, self.energy.dim, self.buffer.bound, next(self.energy.parameters()), generator)
        return langevin(self.energy.score, start, self.step_size, self.sample_steps, generator)

    def log_prob(self, x: Tensor) -> Tensor:
        r""":math:`-E_\theta(x) - \log Z_B` (the class docstring; points of the plane)."""
        if self.energy.dim != 2:
            raise ValueError(f"the log-partition is integrated on a grid of the plane; this energy is on "
                             f"R^{self.energy.dim}")
        return log_prob(self.energy, x, log_partition(self.energy, self.grid_bound, self.grid))


def train_cd(dataset: str | Tensor, *, chain_steps: int = 20, step_size: float = 0.01, steps: int = 2000,
             hidden: int = 128, batch: int = 256, buffer_size: int = 10_000, lr: float = 1e-3, penalty: float = 0.1,
             seed: int = 0, bound: float | None = None, device: str | torch.device | None = None,
             progress: bool | None = None
             ) -> tuple[EnergyMLP, ReplayBuffer, History]:
    r"""Train an :class:`EnergyMLP` (3 layers of ``hidden`` units) by persistent contrastive divergence on the toy
    data set named ``dataset``, or on a tensor of training points (n, d), e.g. flattened images, whose chains start
    uniform on :math:`[-b, b]^d` with :math:`b` = ``bound`` (required then; for a toy set, its square).

    Each of the ``steps`` training steps draws a batch :math:`x^+` of ``batch`` data points; the negatives
    :math:`x^-` are ``chain_steps`` Langevin steps of size ``step_size`` (:math:`\delta`) from ``batch`` chains
    of the replay buffer (``buffer_size`` chains started uniform on :math:`[-b, b]^d`, 5 % renewed at every
    draw; :func:`negative_samples`; on average :func:`mean_chain_steps` Langevin steps behind each at the end, which
    ``buffer.draws`` counts); Adam(``lr``) then lowers :func:`cd_loss` (whose gradient is
    :math:`\overline{\nabla_\theta E_\theta(x^+)} - \overline{\nabla_\theta E_\theta(x^-)}`, minus the
    log-likelihood's gradient :math:`-\mathbb E_{p_{\mathrm{data}}}[\nabla_\theta E_\theta]
    + \mathbb E_{p_\theta}[\nabla_\theta E_\theta]` estimated with the samples, plus that of the
    penalty :math:`\lambda` = ``penalty`` on the squared energies, which sets their scale at about
    :math:`\pm 1/(2\lambda)`; Du & Mordatch's code uses 1) through :func:`~dgm_course.training.fit`. The first
    :math:`S` steps of a run are those of the run with ``steps`` = :math:`S` (nothing depends on the total), so a
    shorter run shows the buffer part-way through a longer one. The global torch
    generator is seeded with ``seed`` (through :func:`~dgm_course.budget.seed`) before the energy is built, so the
    initialisation follows ``DGM_SEED`` too. Returns the energy, the buffer (the model's short-run samples) and the
    history.

    Raises:
        ValueError: an unknown data set, a tensor without a ``bound``, or a batch larger than the buffer (each step
            draws ``batch`` chains).
    """
    data: Tensor | Callable[[int, torch.Generator], Tensor]
    if isinstance(dataset, Tensor):
        data, dim = as_points(dataset, name="dataset"), dataset.shape[1]
        if bound is None or not bound > 0:
            raise ValueError(f"training on a tensor of points needs bound > 0, the half-width of the cube the chains "
                             f"start in (e.g. 1 for images in [-1, 1]); got {bound!r}")
    else:
        data, dim = (lambda n, g: toy2d.sample(dataset, n, g)), 2
        bound = toy2d.BOUNDS[one_of(dataset, toy2d.NAMES, "toy data set")] if bound is None else bound
    if positive_int(batch, "batch") > positive_int(buffer_size, "buffer_size"):
        raise ValueError(f"batch ({batch}) must not exceed buffer_size ({buffer_size}): each step draws one chain of "
                         "the buffer per data point; raise buffer_size or lower batch")
    torch.manual_seed(budget.seed(seed))
    energy = EnergyMLP(dim, hidden, 3)
    buffer = ReplayBuffer(dim, size=buffer_size, bound=bound,
                          generator=torch.Generator().manual_seed(budget.seed(seed)))

    history = fit(energy, contrastive_divergence(energy, buffer, chain_steps, step_size, penalty), data, steps=steps,
                  batch_size=batch, lr=lr, seed=seed, device=device, progress=progress)
    return energy, buffer, history


def held_out_2d(energy: nn.Module, x: Tensor, bound: float, n: int = 400) -> tuple[float, float, float]:
    r"""The held-out NLL (nats) of the points ``x`` under :math:`e^{-E_\theta}/Z_B` and its standard error, with
    :math:`\log Z_B` from :func:`log_partition` on :math:`B = [-b, b]^2` (an ``n`` x ``n`` grid, ``b`` =
    ``bound``); returns ``(nll, se, log_z)``.

    This is the NLL of the density restricted to the square, :math:`e^{-E_\theta}\mathbf 1_B/Z_B`, for points inside
    it. It is optimistic as a score of the energy on the plane: by :math:`\log(Z_{\mathbb R^2}/Z_B)` if
    :math:`e^{-E_\theta}` has mass outside :math:`B` (infinitely, if :math:`Z_{\mathbb R^2} = \infty`), and a point
    outside :math:`B`, where the restricted density is 0, is scored :math:`E_\theta(x) + \log Z_B`, finite, instead
    of :math:`+\infty`."""
    log_z = log_partition(energy, bound, n)
    with torch.no_grad():
        nll, se = held_out_nll(lambda y: log_prob(energy, y, log_z), x)
    return nll, se, log_z


def log_partition(energy: nn.Module, bound: float, n: int = 400) -> float:
    r""":math:`\log Z_B = \log\int_{[-b, b]^2} e^{-E_\theta(x)}\,dx` by the midpoint rule on an :math:`n \times n`
    grid (:func:`~dgm_course.metrics.log_integrate_2d`; 2-D energies only): the normalising constant of the density
    restricted to the square :math:`B = [-b, b]^2`. It equals :math:`\log Z_\theta` only when the mass of
    :math:`e^{-E_\theta}` outside the square is negligible, which nothing guarantees; compare it with a larger
    square to see."""
    weights = next(energy.parameters())
    return log_integrate_2d(lambda x: -energy(x.to(weights)), bound, n)


def log_prob(energy: nn.Module, x: Tensor, log_z: float) -> Tensor:
    r""":math:`\log p_\theta(x) = -E_\theta(x) - \log Z` with ``log_z`` = :math:`\log Z` from :func:`log_partition`
    (the log-density, inside its square, of the density restricted to it)."""
    x = as_points(x)
    return -energy(x) - log_z


def score_matching_loss(energy: nn.Module, x: Tensor, projections: int | None = None,
                        generator: torch.Generator | None = None) -> Tensor:
    r"""Train an energy without sampling from it: Hyvärinen's (2005) score matching with the model's score
    :math:`s_\theta = -\nabla_x E_\theta`,

    .. math::
        J(\theta) = \mathbb E_{p_{\mathrm{data}}}\Big[\operatorname{tr} \nabla_x s_\theta(x)
        + \tfrac12 \lVert s_\theta(x) \rVert^2\Big]
        = \tfrac12\, \mathbb E_{p_{\mathrm{data}}} \lVert s_\theta(x) - \nabla_x \log p_{\mathrm{data}}(x) \rVert^2
        - C,

    where :math:`C = \frac12 \mathbb E \lVert \nabla \log p_{\mathrm{data}} \rVert^2` does not depend on :math:`\theta`
    (integration by parts, assuming :math:`p_{\mathrm{data}}` differentiable, both scores of finite second moment and
    :math:`p_{\mathrm{data}}(x)\,s_\theta(x) \to 0` as :math:`\lVert x \rVert \to \infty`). With ``projections=None``
    the trace is exact (one backward pass per dimension: fine in 2-D); with ``projections=k``, sliced score matching
    (Song et al. 2019) replaces it by :math:`\frac1k \sum_j v_j^\top \nabla_x s_\theta\, v_j`,
    :math:`v_j \sim \mathcal N(0, I)` drawn from ``generator``, which has the same expectation and costs one backward
    pass per projection whatever the dimension. (Only the trace is sliced; :math:`\lVert s_\theta \rVert^2` stays exact:
    their variance-reduced form.) The energy must act on each row alone, as every energy of the course does: the trace
    is read from gradients of sums over the batch. The graph is kept (``create_graph``) so that the loss can be
    differentiated in :math:`\theta`."""
    x = as_points(x)
    if projections is not None:
        projections = positive_int(projections, "projections")
    y = x.detach().requires_grad_(True)
    (grad,) = torch.autograd.grad(energy(y).sum(), y, create_graph=True)
    score = -grad
    if projections is None:  # tr grad s = sum_i d s_i / d x_i, one backward pass each
        trace = sum(torch.autograd.grad(score[:, i].sum(), y, create_graph=True)[0][:, i] for i in range(x.shape[1]))
    else:
        trace = torch.zeros((), dtype=x.dtype, device=x.device)
        for _ in range(projections):
            v = latent.randn_like(x, generator)
            (jv,) = torch.autograd.grad((score * v).sum(), y, create_graph=True)  # v^T grad s, row by row
            trace = trace + (jv * v).sum(dim=1) / projections
    return (trace + 0.5 * (score ** 2).sum(dim=1)).mean()


def denoising_score_matching_loss(energy: EnergyMLP, x: Tensor, sigma: float,
                                  generator: torch.Generator | None = None) -> Tensor:
    r"""Train an energy without sampling from it: denoising score matching (Vincent 2011) with the model's score
    :math:`-\nabla_x E_\theta`, at one noise level :math:`\sigma` and weighted by :math:`\sigma^2`:
    :math:`\mathbb E\,\lVert -\sigma\nabla_x E_\theta(x + \sigma\varepsilon) + \varepsilon\rVert^2`. Its minimiser is
    the score of the data blurred by :math:`\mathcal N(0, \sigma^2 I)`, so :math:`e^{-E_\theta}` learns that blurred
    law."""
    if not sigma > 0:
        raise ValueError(f"sigma must be positive; got {sigma!r}")
    eps = latent.randn_like(x, generator)
    noisy = (x + sigma * eps).requires_grad_(True)
    (grad,) = torch.autograd.grad(energy(noisy).sum(), noisy, create_graph=True)
    return ((-sigma * grad + eps) ** 2).sum(dim=1).mean()
