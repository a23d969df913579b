"""Applications of the course's generative models: super-resolution (:mod:`.superres`)."""

from . import superres

__all__ = ["superres"]
