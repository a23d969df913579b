r"""A generator trained by minimising the energy distance to the data: a generative moment-matching network
(Li et al. 2015; Dziugaite et al. 2015) with the energy distance in place of a Gaussian-kernel MMD.

The energy distance is twice the squared MMD of the distance-induced kernel
:math:`k(x, y) = \tfrac12(|x - x_0| + |y - x_0| - |x - y|)`, which is positive definite (Sejdinovic et al. 2013;
:math:`-|x - y|` alone is only conditionally positive definite), so no critic is needed: the loss of a batch
:math:`x_1..x_n` and generated points :math:`g_\theta(z_1)..g_\theta(z_n)` is the U-statistic of :eq:`energy-distance`,

.. math::
    \hat{\mathcal E}_U = \frac{2}{n^2}\sum_{i,j}|g_\theta(z_i) - x_j|
        - \frac{1}{n(n-1)}\sum_{i \ne i'}|g_\theta(z_i) - g_\theta(z_{i'})|
        - \frac{1}{n(n-1)}\sum_{j \ne j'}|x_j - x_{j'}|,

an unbiased estimate of :math:`\mathcal E(g_\theta(Z), X)`; its gradient is then an unbiased estimate of
the true gradient (Bellemare et al. 2017), which the Wasserstein distance of a minibatch does not give.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

from ._checks import positive_int
from .contract import NoDensity
from .gan.models import mlp_generator, push_forward
from .metrics import energy_distance


class EnergyGenerator(NoDensity, nn.Module):
    r"""A generator :math:`g_\theta: \mathbb R^q \to \mathbb R^d` with latent :math:`z \sim \mathcal N(0, I_q)`,
    trained by :meth:`loss` (the module docstring's :math:`\hat{\mathcal E}_U`) with
    :func:`~dgm_course.training.fit`. It satisfies the course's model contract (:mod:`dgm_course.contract`)
    without a density: one evaluation of the generator a sample."""

    evaluations = 1

    def __init__(self, generator: nn.Module, latent: int) -> None:
        super().__init__()
        self.generator, self.latent = generator, positive_int(latent, "latent")

    def sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        r"""``n`` samples :math:`g_\theta(z)`, :math:`z \sim \mathcal N(0, I_q)`."""
        return push_forward(self.generator, self.latent, n, generator)

    def objective(self, steps: int) -> Callable[[Tensor], Tensor]:
        """The training loss, whatever the run's length: :meth:`loss`."""
        return self.loss

    def loss(self, x: Tensor) -> Tensor:
        r"""The unbiased energy distance between ``len(x)`` fresh samples and the batch ``x``."""
        return energy_distance(self.sample(len(x)), x, unbiased=True)


def energy_generator(latent: int, dim: int, hidden: int = 128, depth: int = 3) -> EnergyGenerator:
    """An :class:`EnergyGenerator` whose network is the GANs' MLP generator
    (:func:`~dgm_course.gan.models.mlp_generator`), so that the two can be compared at equal size."""
    return EnergyGenerator(mlp_generator(latent, dim, hidden, depth), latent)
