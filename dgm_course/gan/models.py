r"""Generators, discriminators (critics), the GAN that holds the two, and its four objectives.

A :class:`GAN` holds a generator :math:`g_\theta: \mathbb R^q \to \mathbb R^d` and a discriminator (or
critic) :math:`D_\phi`, and the recipe it was built by; a :class:`~.recipes.Recipe`'s ``phases(gan)`` returns the two
players' :class:`~dgm_course.training.Phase` for :func:`~dgm_course.training.fit`, for one of the four objectives:

==================  ======================================  ==========================================
``objective``       discriminator / critic step             generator step
==================  ======================================  ==========================================
``"minimax"``       :func:`.losses.discriminator_loss`      :func:`.losses.minimax_generator_loss`
``"nonsaturating"`` :func:`.losses.discriminator_loss`      :func:`.losses.nonsaturating_generator_loss`
``"wgan-clip"``     :func:`.losses.critic_loss`, then       :func:`.losses.wasserstein_generator_loss`
                    :func:`.losses.clip_weights`
``"wgan-gp"``       :func:`.losses.critic_loss` + λ         :func:`.losses.wasserstein_generator_loss`
                    :func:`.losses.gradient_penalty`
==================  ======================================  ==========================================
"""

from __future__ import annotations

import math
from typing import Literal, Protocol, get_args

import torch
from torch import Tensor, nn

from .._checks import positive_int
from ..contract import NoDensity
from ..latent import draw as latent_draw
from ..nets import mlp
from ..training import Phase

Objective = Literal["minimax", "nonsaturating", "wgan-clip", "wgan-gp"]
OBJECTIVES: tuple[str, ...] = get_args(Objective)


class Packed(nn.Module):
    r"""PacGAN's packing (Lin et al. 2018): the discriminator judges ``pack`` samples at once, concatenated,
    so that a batch of :math:`n` samples gives :math:`n / m` decisions. A generator that collapses produces
    packs of near-identical points, which are easy to tell from packs of real data."""

    def __init__(self, net: nn.Module, pack: int) -> None:
        super().__init__()
        self.net, self.pack = net, positive_int(pack, "pack")

    def forward(self, x: Tensor) -> Tensor:
        """One decision per pack of ``pack`` consecutive rows of ``x``; shape (batch / pack, 1)."""
        if len(x) % self.pack:
            raise ValueError(f"a packed discriminator needs a batch divisible by pack = {self.pack}; got {len(x)}")
        return self.net(x.reshape(len(x) // self.pack, -1))


def mlp_generator(latent: int, dim: int, hidden: int = 128, depth: int = 3) -> nn.Module:
    r"""An MLP generator :math:`\mathbb R^q \to \mathbb R^d` with ReLU hidden layers and a linear output."""
    return mlp(latent, dim, hidden, depth, activation=nn.ReLU)


def mlp_discriminator(dim: int, hidden: int = 128, depth: int = 3, pack: int = 1, spectral_norm: bool = False
                      ) -> nn.Module:
    """An MLP discriminator (critic) with LeakyReLU(0.2) hidden layers and one output (a logit or a score);
    with ``pack`` > 1 it judges packs of samples (:class:`Packed`); with ``spectral_norm`` every linear
    layer is divided by its largest singular value (Miyato et al. 2018), which bounds its Lipschitz constant."""
    net = mlp(dim * pack, 1, hidden, depth, activation=lambda: nn.LeakyReLU(0.2))
    if spectral_norm:
        for i, layer in enumerate(net):
            if isinstance(layer, nn.Linear):
                net[i] = nn.utils.parametrizations.spectral_norm(layer)
    return Packed(net, pack) if pack > 1 else net


def dcgan_generator(latent: int, shape: tuple[int, int, int], channels: int = 64) -> nn.Module:
    """A DCGAN generator (Radford et al. 2016) for images (c, h, w), h and w divisible by 4: a dense layer
    to (2·channels, h/4, w/4), two stride-2 transposed convolutions with batch norm and ReLU, a sigmoid
    output in [0, 1]."""
    c, h, w = shape
    if h % 4 or w % 4:
        raise ValueError(f"dcgan_generator needs h and w divisible by 4; got {shape}")
    small = (2 * channels, h // 4, w // 4)
    return nn.Sequential(
        nn.Linear(latent, math.prod(small)), nn.BatchNorm1d(math.prod(small)), nn.ReLU(), nn.Unflatten(1, small),
        nn.ConvTranspose2d(2 * channels, channels, 4, 2, 1), nn.BatchNorm2d(channels), nn.ReLU(),
        nn.ConvTranspose2d(channels, c, 4, 2, 1), nn.Sigmoid())


def dcgan_discriminator(shape: tuple[int, int, int], channels: int = 64, spectral_norm: bool = False) -> nn.Module:
    """A DCGAN discriminator (critic) for images (c, h, w): two stride-2 convolutions with LeakyReLU(0.2),
    no batch norm (which would couple the examples of a batch and break the gradient penalty), one output."""
    c, h, w = shape
    layers: list[nn.Module] = [
        nn.Conv2d(c, channels, 4, 2, 1), nn.LeakyReLU(0.2),
        nn.Conv2d(channels, 2 * channels, 4, 2, 1), nn.LeakyReLU(0.2),
        nn.Flatten(), nn.Linear(2 * channels * (h // 4) * (w // 4), 1)]
    if spectral_norm:
        layers = [nn.utils.parametrizations.spectral_norm(m) if isinstance(m, (nn.Conv2d, nn.Linear)) else m
                  for m in layers]
    return nn.Sequential(*layers)


def push_forward(net: nn.Module, latent: int, n: int, generator: torch.Generator | None = None) -> Tensor:
    r"""``n`` samples :math:`g(z)` of the network ``net``, :math:`z \sim \mathcal N(0, I_q)` with :math:`q` =
    ``latent``; ``z`` is drawn on the random generator's device and moved to the network's, so a CPU generator
    (a fixed evaluation seed) works with a model trained on a GPU."""
    return net(latent_draw(n, latent, next(net.parameters()), generator))


class Players(Protocol):
    """What makes a GAN's two players for :func:`~dgm_course.training.fit` (a :class:`~.recipes.Recipe` does)."""

    def phases(self, gan: GAN, steps: int | None = None) -> list[Phase]:
        """The discriminator's and the generator's phases for a run of ``steps`` rounds."""
        ...


class GAN(NoDensity, nn.Module):
    r"""A generator and a discriminator (critic), with latent :math:`z \sim \mathcal N(0, I_q)`, and the
    ``recipe`` that trains them (set by :meth:`~.recipes.Recipe.build`). It satisfies the course's model contract
    (:mod:`dgm_course.contract`) without a density: one evaluation of the generator a sample."""

    evaluations = 1

    def __init__(self, generator: nn.Module, discriminator: nn.Module, latent: int,
                 recipe: Players | None = None) -> None:
        super().__init__()
        self.generator, self.discriminator = generator, discriminator
        self.latent = positive_int(latent, "latent")
        self.recipe = recipe

    def objective(self, steps: int) -> list[Phase]:
        """The two players under the GAN's recipe, for a run of ``steps`` rounds (its cosine schedules span them)."""
        if self.recipe is None:
            raise ValueError("this GAN has no recipe to train it: build it with Recipe.build() or "
                             "Recipe.build_dcgan(), or give fit the phases of recipe.phases(gan)")
        return self.recipe.phases(self, steps)

    def sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        r"""``n`` samples :math:`g_\theta(z)`, :math:`z \sim \mathcal N(0, I_q)`."""
        return push_forward(self.generator, self.latent, n, generator)
