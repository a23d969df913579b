"""dgm_course: the tested implementations behind the course *Deep generative models*.

The parts, one concept a module, in the book's notation:

- :mod:`dgm_course.data` -- 2-D toy densities (exact log-densities where known), image sets (digits, Fashion-MNIST,
  photographs; offline sources first), simulated galaxies, and the one download helper.
- :mod:`dgm_course.ode` -- fixed-step solvers (Euler, midpoint, RK4, each with its order) and torchdiffeq's.
- :mod:`dgm_course.flows` -- bijections with the ``(outputs, logabsdet)`` contract, :class:`~dgm_course.flows.Flow`
  (a base distribution and a bijection: ``log_prob``, ``sample``), couplings, continuous flows, flow matching.
- :mod:`dgm_course.vae` -- variational autoencoders, their bounds, and the linear-Gaussian model with exact answers.
- :mod:`dgm_course.gan`, :mod:`dgm_course.gmmn` -- GANs and WGANs (losses, networks, recipes); a generator trained
  by the energy distance.
- :mod:`dgm_course.diffusion` -- diffusion and score-based models (schedules, one denoising model read as noise,
  score or velocity, its losses, the samplers and the probability-flow ODE as a flow); :mod:`dgm_course.langevin`
  -- Langevin dynamics from a score.
- :mod:`dgm_course.autoregressive` -- the chain rule in one pass: MADE, PixelCNN (plain and gated) and a causal
  transformer, with one likelihood and sampler; :mod:`dgm_course.ebm` -- energies,
  contrastive divergence with a replay buffer, and 2-D log-partitions on a grid.
- :mod:`dgm_course.applications` -- super-resolution, galaxy deconvolution, style transfer.
- :mod:`dgm_course.metrics` -- energy distance, the energy two-sample test, held-out NLL, mode coverage, spectra,
  and ``score_2d``, the one judge of samples of the plane; :mod:`dgm_course.feature_distances` -- the Fréchet and
  kernel distances (FID's and KID's formulas) between samples of features; :mod:`dgm_course.fidelity` -- precision,
  recall, density, coverage and the copy share, from nearest neighbours; :mod:`dgm_course.features` -- the feature
  map they read on images: a small classifier, trained once per image set and cached with its digest.
- :mod:`dgm_course.compare` -- every model of the course that draws 2-D points, trained and judged the same way
  (the course table).
- :mod:`dgm_course.contract` -- what every model of the course offers (its objective, its sampler, its density and of
  which kind, its evaluations per sample), and the one validator.
- :mod:`dgm_course.training` -- the one training loop; :mod:`dgm_course.checkpoint` its checkpoints.
- :mod:`dgm_course.plotting` -- samples, densities, image grids, trajectories and animations.
- :mod:`dgm_course.budget` -- the ``smoke`` / ``book`` / ``gpu`` budget switch, the ``DGM_SEED`` switch, and the
  sizes of the VAEs that chapters and benchmarks share (``VAE_SIZES``);
  :mod:`dgm_course.notebook` -- seeding, gluing numbers into the prose, and the claims each chapter checks.
- :mod:`dgm_course.exercises` -- checkers for the exercises.

Which way the imports go: ``data``, ``ode``, ``metrics``, ``feature_distances``, ``fidelity``, ``plotting``,
``budget`` and ``checkpoint`` know nothing of models; the model families (``flows``, ``vae``, ``gan``, ``gmmn``,
``diffusion``, ``autoregressive``, ``ebm``, ``applications``) know nothing of notebooks and share ``contract``
(which knows ``training``'s phases only); ``training`` knows a model only through its loss functions and its
``state_dict``; ``compare`` and ``exercises`` sit on top of everything.

Where a new model family plugs in: its module (or subpackage) beside the others, with its equations, arguments and
returns in the docstrings and the shared checks of ``_checks``; its model class satisfying
:class:`~dgm_course.contract.Generative`, so that :func:`dgm_course.training.fit` trains its objective (a loss
function, or :class:`~dgm_course.training.Phase` objects for alternating players) and the judge reads its samples
and density; a :class:`~dgm_course.compare.Contender` in ``compare.CONTENDERS`` so that the evaluation chapter's table
has its row, with no adapter;
its chapter in ``notebooks/`` (with its sanity cell of :class:`~dgm_course.notebook.Claim` objects); its benchmark
under ``benchmarks/``, printing a table over three seeds.
"""

__version__ = "0.1.0"
