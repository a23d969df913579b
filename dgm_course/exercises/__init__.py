"""Checked exercises: a student passes their function, the checker runs it against the reference on
several inputs and says what is wrong, or that it is right.

Each chapter has a module of checkers (:mod:`.intro`, ...); all of them are built on :func:`compare`
and return a :class:`Report`, which prints as a short verdict and is truthy when every check passed::

    >>> from dgm_course.exercises.intro import check_cauchy_generator
    >>> check_cauchy_generator(my_g)
    ✅ cauchy_generator: all 5 checks passed
"""

from .core import Case, Report, compare

__all__ = ["Case", "Report", "compare"]
