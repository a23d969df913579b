"""Data sets of the course: 2-D toy densities (:mod:`.toy2d`) and images (:mod:`.images`)."""

from . import images, toy2d

__all__ = ["images", "toy2d"]
