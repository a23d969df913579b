"""Normalizing flows: bijections with their log-determinants, their composition, and :class:`Flow`.

- :mod:`.base` -- the contract (:class:`Bijection`), :class:`Compose`, :class:`Flow`;
- :mod:`.elementwise` -- :class:`ElementwiseAffine`, :class:`ActNorm`, :class:`Permutation`;
- :mod:`.splines` -- the monotone rational-quadratic spline;
- :mod:`.coupling` -- :class:`AffineCoupling` (RealNVP), :class:`SplineCoupling`, and the flows
  :func:`realnvp` and :func:`spline_flow`.
"""

from .base import Bijection, Compose, Flow, standard_normal_log_prob
from .coupling import AffineCoupling, Coupling, SplineCoupling, realnvp, spline_flow
from .elementwise import ActNorm, ElementwiseAffine, Permutation
from .splines import rational_quadratic_spline

__all__ = [
    "ActNorm",
    "AffineCoupling",
    "Bijection",
    "Compose",
    "Coupling",
    "ElementwiseAffine",
    "Flow",
    "Permutation",
    "SplineCoupling",
    "rational_quadratic_spline",
    "realnvp",
    "spline_flow",
    "standard_normal_log_prob",
]
