"""dgm_course: the tested implementations behind the course *Deep generative models*.

Modules follow the book's chapters, one concept a module:

- :mod:`dgm_course.data` -- 2-D toy densities (exact log-densities where known) and image sets.
- :mod:`dgm_course.flows`, :mod:`dgm_course.ode` -- normalizing flows, continuous flows and their solvers.
- :mod:`dgm_course.vae` -- variational autoencoders, their bounds, and the linear-Gaussian check.
- :mod:`dgm_course.gan`, :mod:`dgm_course.gmmn` -- GANs and WGANs; a generator trained by the energy distance.
- :mod:`dgm_course.metrics` -- energy distance, the energy two-sample test, held-out NLL, mode coverage.
- :mod:`dgm_course.compare` -- every model of the course trained and judged the same way (the course table).
- :mod:`dgm_course.training` -- the one training loop (seeding, device, checkpoints, NaN guard).
- :mod:`dgm_course.plotting` -- samples, densities and image grids.
- :mod:`dgm_course.budget` -- the ``smoke`` / ``book`` / ``gpu`` training-budget switch.
- :mod:`dgm_course.exercises` -- checkers for the exercises.
"""

__version__ = "0.1.0"
