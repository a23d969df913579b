r"""From noise to data: the samplers of diffusion models, each a few lines on a :class:`~.model.Denoiser`.

All start from :math:`x_{t_{\max}} \sim \mathcal N(0, \sigma_{t_{\max}}^2 I)` and walk a grid
:math:`t_N = t_{\max} > \dots > t_1 > t_0 = 0` of equal steps; the network is evaluated at :math:`t_N, \dots, t_1`
(``steps`` evaluations).

- :func:`ddim` (Song, Meng & Ermon 2021), one step from :math:`t` to an earlier time :math:`r < t`:

  .. math::
      x_r = \alpha_r\hat x_0 + \sqrt{\sigma_r^2 - c^2}\,\hat\varepsilon + c\,z, \qquad
      c = \eta\,\tilde\sigma, \quad z \sim \mathcal N(0, I),

  with :math:`\tilde\sigma` the posterior's standard deviation (:func:`~.model.posterior`). With
  :math:`\eta = 0` it is deterministic: Euler's method for the probability-flow ODE written in
  :math:`\bar x = x/\alpha`, :math:`\bar\sigma = \sigma/\alpha`, :math:`d\bar x / d\bar\sigma = \hat\varepsilon`. With
  :math:`\eta = 1` it draws from :math:`q(x_r \mid x_t, \hat x_0)`: DDPM's ancestral sampler (Ho et al. 2020),
  :func:`ancestral`.
- :func:`euler_maruyama`: the reverse-time SDE :math:`dx = [f(t)x - g^2(t)\nabla\log p_t(x)]\,dt + g(t)\,d\bar w`
  (Anderson 1982; Song et al. 2021), one Euler-Maruyama step per grid interval.
- :func:`probability_flow`: the probability-flow ODE :math:`\dot x = f(t)x - \tfrac12 g^2(t)\nabla\log p_t(x)`
  as a :class:`~dgm_course.flows.Flow` through the continuous flows' :class:`~dgm_course.flows.CNF`
  (same solvers, same traces): exact log-densities and samples. With the exact score the ODE and the reverse SDE
  share the marginals :math:`p_t` in continuous time; with finitely many steps each sampler has its own
  discretisation error.
- :func:`annealed_langevin` (Song & Ermon 2019): Langevin dynamics at each noise level in turn, from the
  largest to the smallest, with Jolicoeur-Martineau et al.'s (2021) final denoising step.
"""

from __future__ import annotations

import functools
import math

import torch
from torch import Tensor, nn

from .. import latent
from .._checks import positive_int
from ..flows import CNF, Compose, ElementwiseAffine, Flow
from ..langevin import langevin
from .model import Denoiser


def _start(model: Denoiser, n: int, generator: torch.Generator | None) -> Tensor:
    r"""``n`` draws of the noise the samplers start from, :math:`\mathcal N(0, \sigma_{t_{\max}}^2 I)`, in the model's
    dtype and on its device (:func:`dgm_course.latent.draw`)."""
    z = latent.draw(n, math.prod(model.shape), model.anchor, generator)
    return model.schedule.prior_std() * z.view(n, *model.shape)


def _grid(model: Denoiser, steps: int) -> list[float]:
    r"""The times :math:`t_N = t_{\max} > \dots > t_0 = 0` of ``steps`` equal steps."""
    return torch.linspace(model.schedule.t_max, 0.0, positive_int(steps, "steps") + 1, dtype=torch.float64).tolist()


def ddim_step(model: Denoiser, x: Tensor, t: float, r: float, eta: float = 0.0,
              generator: torch.Generator | None = None) -> Tensor:
    r"""One step of :func:`ddim` from time ``t`` to an earlier time ``r < t`` (module docstring)."""
    if not 0 <= r < t:
        raise ValueError(f"a step goes back in time: need 0 <= r < t; got r={r!r}, t={t!r}")
    if not 0 <= eta <= 1:
        raise ValueError(f"eta must lie in [0, 1] (0: DDIM, 1: ancestral); got {eta!r}")
    sched = model.schedule
    x0, eps = model.predict(t, x)
    rt = torch.tensor([r, t], dtype=torch.float64)
    (a_r, a_t), (sig_r, sig_t) = sched.alpha(rt).tolist(), sched.sigma(rt).tolist()
    c = 0.0
    if eta:
        var_tr = sig_t**2 - (a_t / a_r) ** 2 * sig_r**2
        c = eta * math.sqrt(max(var_tr * sig_r**2 / sig_t**2, 0.0))
    out = a_r * x0 + math.sqrt(max(sig_r**2 - c**2, 0.0)) * eps
    return out + c * latent.randn_like(x, generator) if c > 0 else out


@torch.no_grad()
def ddim(model: Denoiser, n: int, steps: int, eta: float = 0.0, generator: torch.Generator | None = None,
         trajectory: bool = False) -> Tensor:
    r"""``n`` samples by DDIM with ``steps`` network evaluations and stochasticity ``eta`` in [0, 1] (0:
    deterministic DDIM; 1: DDPM's ancestral sampler). With ``trajectory``, the ``steps + 1`` states stacked
    along a new first dimension, from the noise to the samples."""
    if not 0 <= eta <= 1:
        raise ValueError(f"eta must lie in [0, 1] (0: DDIM, 1: ancestral); got {eta!r}")
    x = _start(model, positive_int(n, "n"), generator)
    grid = _grid(model, steps)
    states = [x]
    for t, r in zip(grid[:-1], grid[1:]):
        x = ddim_step(model, x, t, r, eta, generator)
        if trajectory:
            states.append(x)
    return torch.stack(states) if trajectory else x


def ancestral(model: Denoiser, n: int, steps: int, generator: torch.Generator | None = None,
              trajectory: bool = False) -> Tensor:
    r"""DDPM's ancestral sampler: each step draws :math:`x_r \sim q(x_r \mid x_t, \hat x_0)`; the same as
    :func:`ddim` with :math:`\eta = 1`."""
    return ddim(model, n, steps, eta=1.0, generator=generator, trajectory=trajectory)


@torch.no_grad()
def euler_maruyama(model: Denoiser, n: int, steps: int, generator: torch.Generator | None = None) -> Tensor:
    r"""``n`` samples of the reverse-time SDE by Euler-Maruyama: from :math:`t` to :math:`r = t - \Delta`,

    .. math:: x_r = x_t - \Delta\,[f(t)x_t - g^2(t)\hat s(t, x_t)] + g(t)\sqrt\Delta\,z,

    without noise in the last step (to :math:`t = 0`). Needs :math:`\alpha_{t_{\max}} > 0` (the drift :math:`f =
    \dot\alpha/\alpha` is infinite where :math:`\alpha = 0`)."""
    if float(model.schedule.alpha(model.schedule.t_max)) == 0:
        raise ValueError(f"the {model.schedule.kind!r} schedule reaches alpha = 0 at t = {model.schedule.t_max}, where "
                         "the SDE's drift is infinite; sample it with ddim, or the probability-flow ODE")
    x = _start(model, positive_int(n, "n"), generator)
    grid = _grid(model, steps)
    sched = model.schedule
    for t, r in zip(grid[:-1], grid[1:]):
        tt = torch.tensor(t, dtype=torch.float64)
        f, g2, dt = float(sched.drift(tt)), float(sched.g2(tt)), t - r
        x = x - dt * (f * x - g2 * model.score(t, x))
        if r > 0:
            x = x + math.sqrt(g2 * dt) * latent.randn_like(x, generator)
    return x


class ProbabilityFlowField(nn.Module):
    r"""The probability-flow ODE in the time of :class:`~dgm_course.flows.CNF`, :math:`\tau \in [0, 1]` (0: noise,
    1: data): :math:`t(\tau) = t_{\max} - \tau(t_{\max} - t_{\min})` and
    :math:`h(\tau, x) = -(t_{\max} - t_{\min})\,\hat u(t(\tau), x)`, :math:`\hat u` the model's velocity."""

    def __init__(self, model: Denoiser, t_min: float) -> None:
        super().__init__()
        self.model, self.t_min = model, float(t_min)

    def forward(self, tau: Tensor | float, x: Tensor) -> Tensor:
        r"""The velocity :math:`h(\tau, x)` of the class docstring, for points ``x`` (batch, d)."""
        span = self.model.schedule.t_max - self.t_min
        t = torch.as_tensor(tau, dtype=x.dtype, device=x.device)
        t = (self.model.schedule.t_max - t * span).clamp(self.t_min, self.model.schedule.t_max)
        return -span * self.model.velocity(t, x)


def probability_flow(model: Denoiser, t_min: float | None = None, **solver: object) -> Flow:
    r"""The probability-flow ODE of ``model`` as a :class:`~dgm_course.flows.Flow` (data at :math:`t_{\min}` to
    noise at :math:`t_{\max}`, then scaled by :math:`1/\sigma_{t_{\max}}` to the standard normal): ``log_prob``
    by the instantaneous change of variables, ``sample`` by solving back. ``solver`` options go to
    :class:`~dgm_course.flows.CNF` (default: dopri5 with tolerances :math:`10^{-5}`, exact trace). ``t_min``
    (default: :func:`~.model.denoising_loss`'s, :math:`10^{-3}` for the variance-preserving schedules, where
    :math:`\sigma_0 = 0`, and 0 otherwise, so that the network is used only where it was trained) is where the
    data end of the ODE sits: the flow's density is that of :math:`x_{t_{\min}}`, the data with noise of
    standard deviation :math:`\sigma_{t_{\min}}` (0.0105 for the linear schedule).

    With a learnt score this is the exact density of another model than the ancestral sampler's chain: the
    deterministic one that the ODE defines. Even with the exact score the two agree only in continuous time; with
    finitely many steps each sampler has its own discretisation error."""
    if not isinstance(model, Denoiser):
        raise ValueError(f"probability_flow needs a Denoiser; got {type(model).__name__}")
    if len(model.shape) != 1:
        raise ValueError(f"probability_flow works on flat vectors, shape (d,); got data of shape {model.shape} "
                         "(flatten the images and wrap the network)")
    sched = model.schedule
    t_min = (1e-3 if sched.kind in ("linear", "cosine") else 0.0) if t_min is None else float(t_min)
    if not 0 <= t_min < sched.t_max:
        raise ValueError(f"t_min must lie in [0, {sched.t_max}); got {t_min!r}")
    options = dict(method="dopri5", rtol=1e-5, atol=1e-5) | solver
    dim = model.shape[0]
    cnf = CNF(ProbabilityFlowField(model, t_min), dim, **options)  # type: ignore[arg-type]
    prior = sched.prior_std()
    if abs(prior - 1) < 1e-3:
        return Flow(cnf).to(model.anchor)
    scale = ElementwiseAffine(dim)
    with torch.no_grad():
        scale.log_scale.fill_(-math.log(prior))
    scale.requires_grad_(False)
    return Flow(Compose([cnf, scale])).to(model.anchor)  # the model's device and dtype


@torch.no_grad()
def annealed_langevin(model: Denoiser, n: int, levels: int, steps_each: int, step: float = 2e-5,
                      generator: torch.Generator | None = None, denoise: bool = True) -> Tensor:
    r"""Annealed Langevin dynamics (Song & Ermon 2019, Algorithm 1): ``levels`` noise levels
    :math:`\sigma_1 > \dots > \sigma_L` (the schedule's :math:`\sigma_t` at equally spaced
    :math:`t` from :math:`t_{\max}` to :math:`t_{\max}/L`), at each ``steps_each`` Langevin steps of size
    :math:`\delta_i = \text{step}\cdot\sigma_i^2/\sigma_L^2` with the model's score at that level; ``denoise``
    ends with Tweedie's :math:`\hat x_0` (Jolicoeur-Martineau et al. 2021)."""
    x = _start(model, positive_int(n, "n"), generator)
    levels, steps_each = positive_int(levels, "levels"), positive_int(steps_each, "steps_each")
    times = torch.linspace(model.schedule.t_max, model.schedule.t_max / levels, levels, dtype=torch.float64)
    sig_last = float(model.schedule.sigma(times[-1]))
    for t in times.tolist():
        sig = float(model.schedule.sigma(torch.tensor(t, dtype=torch.float64)))
        x = langevin(functools.partial(_score_at, model, t), x, step * sig**2 / sig_last**2, steps_each, generator)
    return model.x0(times[-1].item(), x) if denoise else x


def _score_at(model: Denoiser, t: float, x: Tensor) -> Tensor:
    """The model's score at the fixed time ``t``, a function of ``x`` alone for Langevin dynamics."""
    return model.score(t, x)
