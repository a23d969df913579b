r"""What a generative model of the course offers: one contract, written once, that every family satisfies.

A model of the course is an ``nn.Module`` (it owns its parameters) with

- ``objective(steps)``: what :func:`~dgm_course.training.fit` minimises over a run of ``steps`` rounds: a loss of a
  batch, ``x -> scalar``, or the :class:`~dgm_course.training.Phase` objects of a game (a GAN's two players);
- ``sample(n, generator)``: ``n`` draws :math:`x \sim p_\theta`, shape (n, \*shape), reproducible with a seeded
  ``torch.Generator``;
- ``log_prob(x)``: :math:`\log p_\theta(x)` per row, of the kind ``density`` says (:data:`DENSITIES`): ``"exact"``
  (a flow, a continuous flow up to its solver's error, a diffusion model's probability-flow ODE), ``"bound"`` (a
  lower bound on it: a VAE's importance-weighted bound), ``"quadrature"`` (the energy normalised by a numerical
  integral), or ``"none"`` (a generator alone; ``log_prob`` raises);
- ``evaluations``: the network evaluations one sample costs (1 for a generator; one per coupling layer of a flow; a
  sampler's steps times the evaluations of each; for an adaptive ODE solver, the number its last solve used, so
  read it right after sampling).

``sample`` draws from the model's law: a VAE does so when built with ``noise=True`` (its default, the decoder's
means, is what VAE papers show). ``density`` may depend on the instance: a diffusion model on data that are not flat
vectors, or an energy off the plane, has "none".

:class:`Generative` states it for type checkers; :func:`check` is the one validator, run before a model is trained
or judged (:mod:`dgm_course.compare`), with an error that names what is missing. A new family joins the course's
table by satisfying it: no adapter.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Protocol, runtime_checkable

import torch
from torch import Tensor, nn

from ._checks import one_of
from .training import Phase

#: What ``log_prob`` returns, by the model's ``density``.
DENSITIES = {
    "exact": "the log-density",
    "bound": "a lower bound on the log-density",
    "quadrature": "the log-density with its normalising constant integrated numerically",
    "none": "nothing: the model has no density, and log_prob raises",
}

#: A model's training objective: one loss of a batch, or the phases of a game.
TrainingObjective = Callable[[Tensor], Tensor] | list[Phase]


@runtime_checkable
class Generative(Protocol):
    """A generative model of the course (the module docstring); every family's model class satisfies it."""

    density: str

    @property
    def evaluations(self) -> int:
        """Network evaluations per sample."""

    def objective(self, steps: int) -> TrainingObjective:
        """The loss of a batch, or a game's phases, for a run of ``steps`` rounds."""

    def sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """``n`` draws from the model."""

    def log_prob(self, x: Tensor) -> Tensor:
        """The log-density of each row of ``x``, of the kind ``density`` says."""

    def parameters(self, recurse: bool = True) -> Iterator[nn.Parameter]:
        """The trained parameters (an ``nn.Module``'s)."""


class NoDensity:
    """For a model without a density (``density = "none"``): ``log_prob`` says so."""

    density = "none"

    def log_prob(self, x: Tensor) -> Tensor:
        """Raise: the model defines no density; judge it by its samples."""
        raise ValueError(f"a {type(self).__name__} has no density (its density is 'none'): judge it by its samples, "
                         "e.g. with dgm_course.metrics.energy_test")


def check(model: object) -> nn.Module:
    """``model`` itself when it satisfies the contract (module docstring); else a ``ValueError`` naming what is
    missing."""
    name = type(model).__name__
    if not isinstance(model, nn.Module):
        raise ValueError(f"a generative model of the course is an nn.Module (it owns its parameters); got {name}")
    missing = [m for m in ("objective", "sample", "log_prob") if not callable(getattr(model, m, None))]
    missing += [m for m in ("density", "evaluations") if not hasattr(model, m)]
    if missing:
        raise ValueError(f"{name} does not satisfy the course's model contract (dgm_course.contract): it lacks "
                         f"{', '.join(missing)}")
    one_of(model.density, DENSITIES, f"{name}.density")
    return model
