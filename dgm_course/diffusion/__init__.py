r"""Diffusion and score-based models: noise schedules, one denoising model, its losses and samplers.

- :mod:`.schedules` -- :class:`Schedule`: the forward process :math:`x_t = \alpha_t x_0 + \sigma_t\varepsilon`
  (linear and cosine variance-preserving, variance-exploding, and flow matching's straight path);
- :mod:`.model` -- :class:`Denoiser`: a network read as noise, clean point, score or velocity;
  :func:`denoising_loss` (DDPM's simplified loss, denoising score matching, flow matching); the posterior and
  the ELBO's weights;
- :mod:`.samplers` -- DDIM and DDPM's ancestral sampler, Euler-Maruyama for the reverse SDE, the
  probability-flow ODE as a :class:`~dgm_course.flows.Flow`, annealed Langevin dynamics;
- :mod:`.generative` -- :class:`Diffusion`: a denoiser with its loss settings, its sampler and its density, as a
  model of the course;
- :mod:`.unet` -- :class:`UNet`, the small U-Net for images (on flat rows, so every sampler takes it);
- :mod:`.guidance` -- conditional models (:class:`LabelledField`), label dropout and classifier-free guidance;
- :mod:`.exact` -- exact scores of noised Gaussian mixtures, to check all of the above against.

Langevin dynamics itself lives in :mod:`dgm_course.langevin` (the energy-based models use it too).
"""

from .exact import ExactScore
from .generative import SAMPLERS, Diffusion
from .guidance import LabelledField, guided, label_dropout_loss
from .model import PARAMETERISATIONS, Denoiser, denoising_loss, elbo_weight, noisy, posterior
from .samplers import ancestral, annealed_langevin, ddim, ddim_step, euler_maruyama, probability_flow
from .schedules import KINDS, Schedule
from .unet import UNet

__all__ = [
    "KINDS",
    "PARAMETERISATIONS",
    "SAMPLERS",
    "Denoiser",
    "Diffusion",
    "ExactScore",
    "LabelledField",
    "Schedule",
    "UNet",
    "ancestral",
    "annealed_langevin",
    "ddim",
    "ddim_step",
    "denoising_loss",
    "elbo_weight",
    "euler_maruyama",
    "guided",
    "label_dropout_loss",
    "noisy",
    "posterior",
    "probability_flow",
]
