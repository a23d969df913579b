r"""Every model of the course that draws points of the plane (all but the autoregressive models, made for
binary images), trained and judged the same way on a 2-D data set: the course-wide table.

:data:`CONTENDERS` names each model with the notebook of the chapter that derives it, its size and its training budget
(steps, batch, learning rate; a GAN's recipe), sized so that each trains in seconds on 2 CPU cores. Every model is
taken through the course's contract (:mod:`dgm_course.contract`: its objective, its sampler, its density and of which
kind, its evaluations per sample), so a new family joins the table with a :class:`Contender` and no adapter.
:func:`train` trains one through :func:`~dgm_course.training.fit`; :func:`judge` measures it on held-out data
(:func:`~dgm_course.data.toy2d.held_out`) with the same code for every model:

- the energy distance :math:`\hat{\mathcal E}_V` between ``n`` samples and ``n`` held-out points, and the
  p-value of the energy test (:func:`~dgm_course.metrics.energy_test`);
- the held-out negative log-likelihood where the model has one: exact for the flows (the continuous ones
  with a fixed-step RK4 solve) and for the diffusion model (its probability-flow ODE, solved by dopri5),
  approximate for the energy-based model (its normalising constant by quadrature on a 500 x 500 grid over
  :math:`[-7, 7]^2`, the mass outside neglected), an upper bound for the VAE (minus the IWAE bound); none for the
  generators;
- modes captured and high-quality samples on the Gaussian mixtures (:func:`~dgm_course.metrics.mode_coverage`);
- training time, the time to draw 10,000 samples, and the network evaluations a sample costs.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch
from torch import Tensor

from . import budget, contract, ebm
from ._checks import one_of, positive_int
from .contract import Generative
from .data import toy2d
from .diffusion import Diffusion, Schedule
from .flows import CNF, Flow, FlowMatching, TimeField, otflow, realnvp, spline_flow
from .gan import TEXTBOOK, Recipe
from .gmmn import EnergyGenerator, energy_generator
from .metrics import energy_test, held_out_nll, score_2d
from .training import History, fit
from .vae import VAE, mlp_vae

Sampler = Callable[[int, torch.Generator | None], Tensor]


@dataclass(frozen=True)
class Contender:
    """A model of the course at the table's size and budget. ``make()`` builds it untrained (any model that satisfies
    the course's contract, :mod:`dgm_course.contract`), and :func:`train` fits its ``objective`` for ``steps`` steps
    with Adam(``lr``) on batches of ``batch``, the rate decaying along a cosine when ``cosine``. A model whose
    objective is a game's phases brings its own optimisers: its ``lr`` is None (:meth:`gan`)."""

    name: str
    chapter: str
    steps: int
    batch: int
    lr: float | None
    make: Callable[[], Generative]
    cosine: bool = True

    def __post_init__(self) -> None:
        positive_int(self.steps, f"{self.name}: steps")
        positive_int(self.batch, f"{self.name}: batch")
        if isinstance(self.make, Recipe):
            raise ValueError(f"{self.name}: a GAN's recipe brings its batch and optimisers: use "
                             "Contender.gan(name, chapter, steps, recipe)")
        if not callable(self.make):
            raise ValueError(f"{self.name}: make must be a function that builds the untrained model; got "
                             f"{type(self.make).__name__}")

    @classmethod
    def gan(cls, name: str, chapter: str, steps: int, recipe: Recipe) -> Contender:
        """A GAN contender: ``recipe``'s GAN trained for ``steps`` rounds, with the recipe's batch, optimisers and
        schedules (the schedules span the run's rounds, whatever the recipe's own ``steps``)."""
        return cls(name, chapter, steps, recipe.batch, None, recipe.build, cosine=False)


def _ml_cnf() -> Flow:
    return Flow(CNF(TimeField(2, 64, 3), 2, method="rk4", steps=8))


def _otflow() -> Flow:
    return otflow(2, width=64, steps=8, cost=0.01, hjb=0.05)


def _flow_matching() -> Flow:
    return FlowMatching(TimeField(2, 128, 4), 2, method="rk4", steps=16, time_power=3.0)


def _vae() -> VAE:
    """The Gaussian-decoder VAE, sampled with the decoder's noise and scored by the IWAE bound with k = 256."""
    return mlp_vae((2,), latent=2, hidden=128, depth=2, likelihood="gaussian", noise=True, bound_samples=256)


def _diffusion() -> Diffusion:
    r"""DDPM's noise prediction on the linear schedule, trained with flow matching's network, rate and
    emphasis near the data (``time_power=3``); sampled by DDIM in 50 steps, scored by its probability-flow ODE
    (dopri5, exact trace)."""
    return Diffusion(TimeField(2, 128, 4), Schedule("linear"), "eps", sampler="ddim", sample_steps=50, time_power=3.0)


# The energy-based model's chains start uniform on [-5, 5]^2, the largest square of the toy data sets; its density is
# normalised on a 500 x 500 grid over [-7, 7]^2 (that square and a margin of 2).
_EBM_BOUND = max(toy2d.BOUNDS.values())
_EBM_GRID_BOUND, _EBM_GRID = _EBM_BOUND + 2, 500
#: Langevin steps (of size 0.01) from uniform noise to one sample of the energy-based model.
EBM_SAMPLE_STEPS = 200


def _ebm() -> ebm.EBM:
    r"""The energy-based model: an MLP energy (3 layers of 128 SiLU units) trained by contrastive
    divergence, 20 Langevin steps of size 0.01 a training step from a replay buffer of 10,000 chains; sampled by
    ``EBM_SAMPLE_STEPS`` Langevin steps of size 0.01 from uniform points of the square (fresh chains, no buffer),
    scored by :math:`-E_\theta - \log Z_\theta` with :math:`\log Z_\theta` on a grid."""
    energy = ebm.EnergyMLP(2, 128, 3)
    chains = torch.Generator().manual_seed(int(torch.randint(2**62, (1,))))  # follows the seed of train()
    return ebm.EBM(energy, ebm.ReplayBuffer(2, 10_000, bound=_EBM_BOUND, generator=chains),
                   sample_steps=EBM_SAMPLE_STEPS, grid_bound=_EBM_GRID_BOUND, grid=_EBM_GRID)


def _energy() -> EnergyGenerator:
    return energy_generator(2, 2, hidden=128, depth=3)


_GAN = TEXTBOOK["nonsaturating"].but(hidden=128, lr_g=1e-3, lr_d=1e-3, cosine=True, batch=512)
_WGAN_GP = TEXTBOOK["wgan-gp"].but(hidden=128, batch=256, lr_g=5e-4, lr_d=5e-4, cosine=True)

#: The models of the course, in the order of their ``chapter`` notebooks, at the table's size and budget.
CONTENDERS: dict[str, Contender] = {c.name: c for c in (
    Contender("RealNVP", "02_normalizing_flows", 700, 512, 2e-3, lambda: realnvp(2, 8, 64)),
    Contender("spline flow", "02_normalizing_flows", 650, 512, 2e-3, lambda: spline_flow(2, 4, 64)),
    Contender("ML-CNF", "03_continuous_flows", 120, 256, 5e-3, _ml_cnf),
    Contender("OT-Flow", "03_continuous_flows", 120, 256, 5e-3, _otflow),
    Contender("flow matching", "03_continuous_flows", 2500, 512, 6e-3, _flow_matching),
    Contender("VAE", "04_variational_autoencoders", 2500, 512, 1e-3, _vae),
    Contender.gan("GAN", "05_gans", 800, _GAN),
    Contender.gan("WGAN-GP", "06_wasserstein_gans", 300, _WGAN_GP),
    Contender("diffusion", "07_diffusion_models", 2500, 512, 6e-3, _diffusion),
    Contender("EBM", "10_energy_based_models", 1500, 256, 1e-3, _ebm, cosine=False),
    Contender("energy generator", "11_evaluation", 1300, 512, 1e-3, _energy),
)}


@dataclass
class Trained:
    """A trained contender on ``dataset``, with its :class:`~dgm_course.training.History`."""

    contender: Contender
    dataset: str
    model: Generative
    history: History
    results: dict[str, float] = field(default_factory=dict)
    samples: Tensor | None = None


def _contender(name: str) -> Contender:
    if name not in CONTENDERS:
        one_of(name, CONTENDERS, "model")
    return CONTENDERS[name]


def train(name: str, dataset: str, *, scale: float = 1.0, seed: int = 0, device: str | torch.device | None = None,
          progress: bool | None = None) -> Trained:
    """Train the contender ``name`` on the toy data set ``dataset`` for ``scale`` times its steps (at least 2)."""
    c = _contender(name)
    toy2d.sample(dataset, 1)  # a clear error for an unknown data set, before any training
    if not scale > 0:
        raise ValueError(f"scale must be a positive number (1 trains for the table's steps); got {scale!r}")
    steps = max(2, round(c.steps * scale))
    torch.manual_seed(budget.seed(seed))
    model = c.make()
    module = contract.check(model)
    objective = model.objective(steps)

    def data(n: int, g: torch.Generator) -> Tensor:
        return toy2d.sample(dataset, n, g)

    if callable(objective) and c.lr is None:  # (fit refuses a learning rate given with phases)
        raise ValueError(f"{c.name}: a model trained by one loss function needs a learning rate; lr None is for one "
                         "trained by phases, which bring their own optimisers")
    history = fit(module, objective, data, steps=steps, batch_size=c.batch, lr=c.lr,
                  cosine=c.cosine and c.lr is not None, seed=seed, device=device, progress=progress)
    module.eval()
    return Trained(c, dataset, model, history)


def sampling_seconds(sample: Sampler, n: int = 10_000, repeats: int = 2) -> float:
    """Wall time of drawing ``n`` samples: the fastest of ``repeats`` draws (the least disturbed by the rest of
    the machine), after one untimed warm-up draw of a few points."""
    times = []
    with torch.no_grad():
        sample(min(n, 256), None)
        for _ in range(positive_int(repeats, "repeats")):
            t0 = time.perf_counter()
            sample(n, None)
            times.append(time.perf_counter() - t0)
    return min(times)


def judge(trained: Trained, *, n: int = 2000, n_permutations: int = 199, seed: int = 1) -> dict[str, float]:
    """Measure a trained model on ``n`` held-out points (:func:`~dgm_course.data.toy2d.held_out`; module
    docstring). The results also go into ``trained.results`` and the ``n`` samples judged into
    ``trained.samples``; NaN marks what a model does not have (an NLL; modes, on a data set without modes)."""
    model, dataset = trained.model, trained.dataset
    test = toy2d.held_out(dataset, n).double()
    gen = torch.Generator().manual_seed(budget.seed(seed))
    with torch.no_grad():
        samples = model.sample(n, gen).detach().cpu().double()
    evaluations = model.evaluations  # read now: an adaptive solver's count is that of its last solve
    stat, p = energy_test(samples, test, n_permutations, gen)
    results = {**score_2d(samples, dataset), "statistic": stat, "p": p, "nll": math.nan, "nll_se": math.nan,
               "train_s": trained.history.seconds, "sample_s": sampling_seconds(model.sample),
               "evaluations": evaluations}
    if model.density != "none":
        device = next(model.parameters()).device
        results["nll"], results["nll_se"] = held_out_nll(lambda x: model.log_prob(x.to(device).float()).cpu(), test)
    trained.results.update(results)
    trained.samples = samples
    return results


def course_table(datasets: Sequence[str], names: Sequence[str] | None = None, *, scale: float = 1.0, seed: int = 0,
                 n: int = 2000, n_permutations: int = 199, progress: bool | None = None,
                 report: Callable[[Trained], None] | None = None) -> list[Trained]:
    """Train and judge every contender (or those in ``names``) on every data set, in that order; ``report``
    is called after each one (say, to print a line)."""
    out = []
    for dataset in datasets:
        for name in names or list(CONTENDERS):
            trained = train(name, dataset, scale=scale, seed=seed, progress=progress)
            judge(trained, n=n, n_permutations=n_permutations)
            if report is not None:
                report(trained)
            out.append(trained)
    return out
