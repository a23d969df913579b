"""Applications of the course's generative models: super-resolution (:mod:`.superres`), recovering galaxy images
with a conditional GAN (:mod:`.galaxy`) and neural style transfer (:mod:`.style`)."""

from . import galaxy, style, superres

__all__ = ["galaxy", "style", "superres"]
