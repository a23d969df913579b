"""Normalizing flows: bijections with their log-determinants, their composition, and :class:`Flow`.

- :mod:`.base` -- the contract (:class:`Bijection`), :class:`Compose`, :class:`Flow`;
- :mod:`.elementwise` -- :class:`ElementwiseAffine`, :class:`ActNorm`, :class:`Permutation`;
- :mod:`.splines` -- the monotone rational-quadratic spline;
- :mod:`.coupling` -- :class:`AffineCoupling` (RealNVP), :class:`SplineCoupling`, and the flows
  :func:`realnvp` and :func:`spline_flow`;
- :mod:`.cnf` -- continuous flows: :class:`TimeField`, :class:`CNF` (a bijection solved by an ODE), :func:`cnf`;
- :mod:`.otflow` -- OT-Flow: :class:`OTField` (gradient of a potential), :func:`otflow`, its loss;
- :mod:`.matching` -- flow matching: the conditional OT path and its loss.
"""

from ..latent import log_prob as standard_normal_log_prob
from .base import Bijection, Compose, Flow
from .cnf import CNF, TimeField, cnf
from .coupling import AffineCoupling, Coupling, SplineCoupling, realnvp, spline_flow
from .elementwise import ActNorm, ElementwiseAffine, Permutation
from .matching import FlowMatching, flow_matching_loss
from .otflow import OTField, OTFlow, otflow, otflow_loss
from .splines import rational_quadratic_spline

__all__ = [
    "ActNorm",
    "AffineCoupling",
    "Bijection",
    "CNF",
    "Compose",
    "Coupling",
    "ElementwiseAffine",
    "Flow",
    "FlowMatching",
    "OTField",
    "OTFlow",
    "Permutation",
    "SplineCoupling",
    "TimeField",
    "cnf",
    "flow_matching_loss",
    "otflow",
    "otflow_loss",
    "rational_quadratic_spline",
    "realnvp",
    "spline_flow",
    "standard_normal_log_prob",
]
