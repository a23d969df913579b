"""Applications of the course's generative models: super-resolution (:mod:`.superres`) and neural style
transfer (:mod:`.style`)."""

from . import style, superres

__all__ = ["style", "superres"]
