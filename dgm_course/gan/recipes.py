r"""Training recipes for GANs, and the functions that train and judge them on 2-D mixtures and on images.

A :class:`Recipe` names every choice that decides whether a GAN captures the 25 modes of the grid:
the objective, the networks' size, the learning rates, the batch, the schedule. :data:`TEXTBOOK` holds the
published defaults of each objective; :data:`LADDER` goes from the textbook non-saturating GAN to :data:`BEST`, its
last rung, one change at a time.
:func:`train_2d` trains one recipe through :func:`~dgm_course.training.fit` and measures it as every 2-D model
of the course is measured (:func:`~dgm_course.metrics.score_2d`: modes captured, the fraction of high-quality
samples and the energy distance to held-out data).
:func:`train_images` trains a recipe as a DCGAN and tracks the energy distance between its samples and test
images.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass

import torch
from torch import Tensor

from .. import budget
from .._checks import one_of, positive_int
from ..data import toy2d
from ..metrics import energy_distance, score_2d
from ..training import History, Phase, fit
from . import losses
from .models import GAN, OBJECTIVES, Objective, dcgan_discriminator, dcgan_generator, mlp_discriminator, mlp_generator


@dataclass(frozen=True)
class Recipe:
    """Everything that defines a GAN run. ``hidden`` is the width of the MLPs (units) or of a DCGAN (channels);
    ``steps`` counts generator steps (rounds); each round has ``n_critic`` discriminator (critic) steps; every
    step draws a fresh ``batch``."""

    objective: Objective = "nonsaturating"
    hidden: int = 256
    depth: int = 3
    latent: int = 2
    lr_g: float = 2e-4
    lr_d: float = 2e-4
    betas: tuple[float, float] = (0.5, 0.999)
    batch: int = 256
    steps: int = 6000
    n_critic: int = 1
    cosine: bool = False
    gp_weight: float = 10.0
    clip: float = 0.01

    def __post_init__(self) -> None:
        one_of(self.objective, OBJECTIVES, "objective")
        for name in ("hidden", "depth", "latent", "batch", "steps", "n_critic"):
            positive_int(getattr(self, name), f"Recipe.{name}")
        for name in ("lr_g", "lr_d", "clip"):
            if not getattr(self, name) > 0:
                raise ValueError(f"Recipe.{name} must be positive; got {getattr(self, name)!r}")
        if not self.gp_weight >= 0:
            raise ValueError(f"Recipe.gp_weight must be >= 0; got {self.gp_weight!r}")
        if len(self.betas) != 2 or not all(0 <= b < 1 for b in self.betas):
            raise ValueError(f"Recipe.betas must be two numbers in [0, 1) (Adam's); got {self.betas!r}")

    def but(self, **changes: object) -> Recipe:
        """A copy with some fields changed: ``BEST.but(steps=6000)``."""
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]

    def build(self, dim: int = 2) -> GAN:
        """The untrained GAN: MLP generator (ReLU) and discriminator (LeakyReLU), ``depth`` x ``hidden``."""
        return GAN(mlp_generator(self.latent, dim, self.hidden, self.depth),
                   mlp_discriminator(dim, self.hidden, self.depth), self.latent, self)

    def build_dcgan(self, shape: tuple[int, int, int]) -> GAN:
        """The untrained DCGAN for images of ``shape`` (c, h, w), ``hidden`` channels."""
        return GAN(dcgan_generator(self.latent, shape, self.hidden), dcgan_discriminator(shape, self.hidden),
                   self.latent, self)

    def phases(self, gan: GAN, steps: int | None = None) -> list[Phase]:
        """The two players of ``gan`` under this recipe's ``objective`` (the table of :mod:`.models`) as phases for
        :func:`~dgm_course.training.fit`: ``n_critic`` discriminator (critic) steps with Adam(``lr_d``,
        ``betas``), then one generator step with Adam(``lr_g``). ``gp_weight`` is λ of WGAN-GP; ``clip`` the range
        of WGAN's weight clipping. With ``cosine``, both learning rates decay to 0 along a cosine over the
        ``steps`` rounds of the run (default: the recipe's ``steps``)."""
        objective, gp_weight, clip = self.objective, self.gp_weight, self.clip
        rounds = self.steps if steps is None else positive_int(steps, "steps")
        g, d = gan.generator, gan.discriminator
        opt_g = torch.optim.Adam(g.parameters(), lr=self.lr_g, betas=self.betas)
        opt_d = torch.optim.Adam(d.parameters(), lr=self.lr_d, betas=self.betas)
        wasserstein = objective.startswith("wgan")

        def d_loss(x: Tensor) -> Tensor:
            with torch.no_grad():
                fake = gan.sample(len(x))
            real_out, fake_out = d(x), d(fake)
            if not wasserstein:
                return losses.discriminator_loss(real_out, fake_out)
            loss = losses.critic_loss(real_out, fake_out)
            return loss + gp_weight * losses.gradient_penalty(d, x, fake) if objective == "wgan-gp" else loss

        generator_loss = {"minimax": losses.minimax_generator_loss,
                          "nonsaturating": losses.nonsaturating_generator_loss}.get(objective,
                                                                                    losses.wasserstein_generator_loss)

        def g_loss(x: Tensor) -> Tensor:
            return generator_loss(d(gan.sample(len(x))))

        def decay(opt: torch.optim.Optimizer) -> torch.optim.lr_scheduler.LRScheduler | None:
            return torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=rounds) if self.cosine else None

        after = (lambda: losses.clip_weights(d, clip)) if objective == "wgan-clip" else None
        return [Phase("discriminator", d_loss, opt_d, self.n_critic, decay(opt_d), after),
                Phase("generator", g_loss, opt_g, 1, decay(opt_g))]

#: The published defaults, on 3 x 256 MLPs: Goodfellow et al. (2014) and DCGAN's Adam(2e-4, beta1 0.5) for
#: the two GAN objectives; Arjovsky et al. (2017): clipping at 0.01, 5 critic steps, learning rate 5e-5 (they
#: used RMSProp; here Adam, as everywhere in the course); Gulrajani et al. (2017): lambda = 10, 5 critic
#: steps, Adam(1e-4, betas (0, 0.9)) (their Algorithm 1).
TEXTBOOK: dict[str, Recipe] = {
    "minimax": Recipe("minimax"),
    "nonsaturating": Recipe("nonsaturating"),
    "wgan-clip": Recipe("wgan-clip", lr_g=5e-5, lr_d=5e-5, n_critic=5, steps=2000),
    "wgan-gp": Recipe("wgan-gp", lr_g=1e-4, lr_d=1e-4, betas=(0.0, 0.9), n_critic=5, steps=2000),
}

# The ladder's rungs, each the one before it with one change.
_textbook = TEXTBOOK["nonsaturating"]
_fast = _textbook.but(lr_g=1e-3, lr_d=1e-3)
_cosine = _fast.but(cosine=True)
_wide = _cosine.but(batch=1024)

#: The ladder's last rung: the textbook non-saturating GAN with learning rates 1e-3 that decay along a cosine,
#: batches of 1,024 and 8,000 generator steps (6,000 in the textbook recipe).
BEST: Recipe = _wide.but(steps=8000)

#: From the textbook non-saturating GAN to :data:`BEST`, one change at a time.
LADDER: dict[str, Recipe] = {
    "non-saturating, Adam 2e-4, batch 256": _textbook,
    "+ learning rates 1e-3": _fast,
    "+ cosine decay": _cosine,
    "+ batch 1024": _wide,
    "+ 8,000 steps": BEST,
}


def evaluate_2d(gan: GAN, dataset: str, n: int = 2500, seed: int = 1, samples: list[Tensor] | None = None
                ) -> dict[str, float]:
    """``n`` samples drawn with ``seed``, judged by :func:`~dgm_course.metrics.score_2d`: modes captured, the
    high-quality fraction (a mode counts with >= 20 high-quality samples of ``n``) and the energy distance to
    ``n`` held-out points. When ``samples`` is a list, the ``n`` samples judged are appended to it."""
    gen = torch.Generator().manual_seed(budget.seed(seed))
    with torch.no_grad():
        drawn = gan.sample(n, gen).detach().cpu()
    if samples is not None:
        samples.append(drawn)
    return score_2d(drawn, dataset)


def train_2d(recipe: Recipe, dataset: str, *, seed: int = 0, evaluate_every: int | None = None,
             snapshots: list[Tensor] | None = None, checkpoint: str | os.PathLike[str] | None = None,
             device: str | torch.device | None = None, progress: bool | None = None) -> tuple[GAN, History]:
    """Train ``recipe`` on the mixture ``dataset`` ("8gaussians" or "25gaussians") with ``seed``.

    Every ``evaluate_every`` rounds and at the end, :func:`evaluate_2d` goes into ``history.evaluations``;
    when ``snapshots`` is a list, the 2,500 samples of each evaluation are appended to it (the i-th belongs
    to ``history.evaluations[i]``).
    """
    toy2d.modes(dataset)  # a clear error for a dataset without modes, before any training
    torch.manual_seed(budget.seed(seed))
    gan = recipe.build()
    phases = recipe.phases(gan)

    def evaluate() -> dict[str, float]:
        return evaluate_2d(gan, dataset, samples=snapshots)

    def sampler(n: int, g: torch.Generator) -> Tensor:
        return toy2d.sample(dataset, n, g)

    history = fit(gan, phases, sampler, steps=recipe.steps, batch_size=recipe.batch, seed=seed, device=device,
                  checkpoint=checkpoint, evaluate=evaluate, evaluate_every=evaluate_every, progress=progress)
    return gan, history


def train_images(recipe: Recipe, train: Tensor, test: Tensor, *, seed: int = 0, n_track: int = 500,
                 evaluate_every: int | None = None, checkpoint: str | os.PathLike[str] | None = None,
                 device: str | torch.device | None = None, progress: bool | None = None
                 ) -> tuple[GAN, History, float]:
    """Train a DCGAN (:meth:`Recipe.build_dcgan`) on the images ``train`` (n, c, h, w) in [0, 1], tracking the
    energy distance between ``n_track`` samples and ``n_track`` test images every ``evaluate_every`` steps.

    Returns the GAN, the history (``energy`` in its evaluations) and the floor: the same distance between
    ``n_track`` training and test images, what a perfect model would reach.
    """
    if train.ndim != 4 or test.shape[1:] != train.shape[1:]:
        raise ValueError(f"train and test must be images (n, c, h, w) of one shape; got {tuple(train.shape)} and "
                         f"{tuple(test.shape)}")
    torch.manual_seed(budget.seed(seed))
    c, h, w = train.shape[1:]
    gan = recipe.build_dcgan((c, h, w))
    y = test[:n_track].flatten(1)
    track = torch.Generator()

    def evaluate() -> dict[str, float]:
        track.manual_seed(1)  # the same latent codes at every evaluation
        return {"energy": float(energy_distance(gan.sample(len(y), track).flatten(1).cpu(), y))}

    history = fit(gan, recipe.phases(gan), train, steps=recipe.steps, batch_size=recipe.batch, seed=seed,
                  device=device, checkpoint=checkpoint, evaluate=evaluate, evaluate_every=evaluate_every,
                  progress=progress)
    return gan, history, float(energy_distance(train[:n_track].flatten(1), y))
