"""Data sets of the course: 2-D toy densities (:mod:`.toy2d`) and, in later chapters, images."""

from . import toy2d

__all__ = ["toy2d"]
