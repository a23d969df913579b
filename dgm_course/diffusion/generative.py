r"""A diffusion model as a model of the course (:mod:`dgm_course.contract`): a :class:`~.model.Denoiser` with its
training settings, its sampler and its density.

:class:`Diffusion` trains by :func:`~.model.denoising_loss` (times drawn with ``t_min`` and ``time_power``), draws
samples with one of :data:`SAMPLERS` in ``sample_steps`` steps (one network evaluation each), and scores points
(flat vectors) by the log-density of its probability-flow ODE (:func:`~.samplers.probability_flow`: dopri5 at tolerances
:math:`10^{-5}`, exact trace). That density is exact for the ODE's model, which is not the sampler's chain: with
finitely many steps the two differ by their discretisation errors.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import torch
from torch import Tensor

from .. import _checks
from .._checks import one_of, positive_int
from .model import Denoiser, denoising_loss
from .samplers import ancestral, ddim, euler_maruyama, probability_flow
from .schedules import Schedule

#: The samplers a :class:`Diffusion` draws with, each ``sampler(model, n, steps, generator=...)``.
SAMPLERS: dict[str, Callable[..., Tensor]] = {"ddim": ddim, "ancestral": ancestral, "euler-maruyama": euler_maruyama}


class Diffusion(Denoiser):
    """A :class:`~.model.Denoiser` (``net``, ``schedule``, ``parameterisation``, ``shape``) that trains, samples and
    scores itself (the module docstring)."""

    density = "exact"

    def __init__(self, net: Callable[[Tensor, Tensor], Tensor], schedule: Schedule, parameterisation: str = "eps",
                 shape: tuple[int, ...] = (2,), *, sampler: str = "ddim", sample_steps: int = 50,
                 time_power: float = 1.0, t_min: float | None = None) -> None:
        super().__init__(net, schedule, parameterisation, shape)
        self.sampler = one_of(sampler, SAMPLERS, "sampler")
        self.sample_steps = positive_int(sample_steps, "sample_steps")
        sched = self.schedule
        if t_min is not None and not 0 <= t_min < sched.t_max:
            raise ValueError(f"t_min must lie in [0, {sched.t_max}); got {t_min!r}")
        self.time_power, self.t_min = _checks.time_power(time_power), t_min
        # the probability-flow ODE is solved on flat vectors: a model of another shape has no density here
        self.density = "exact" if len(self.shape) == 1 else "none"

    @property
    def evaluations(self) -> int:
        """Network evaluations per sample: the sampler's steps."""
        return self.sample_steps

    def objective(self, steps: int) -> Callable[[Tensor], Tensor]:
        """The denoising loss of a batch with the model's ``t_min`` and ``time_power``, whatever the run's length."""
        # a partial, not a lambda: fit's checkpoint fingerprint reads the settings from it
        return functools.partial(denoising_loss, self, t_min=self.t_min, time_power=self.time_power)

    def sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """``n`` samples of the model's sampler in ``sample_steps`` steps."""
        return SAMPLERS[self.sampler](self, n, self.sample_steps, generator=generator)

    def log_prob(self, x: Tensor) -> Tensor:
        """The log-density of the probability-flow ODE's model at each row of ``x`` (flat data only: a model of
        another shape has density "none" and raises)."""
        if self.density == "none":
            raise ValueError(f"the probability-flow density is computed on flat vectors; this model's data have shape "
                             f"{self.shape} (flatten the images and give the network flat rows, as UNet takes them)")
        return probability_flow(self, self.t_min).log_prob(x)
