r"""GANs and Wasserstein GANs: the losses (:mod:`.losses`), the networks (:mod:`.models`), and the recipes, whose
``phases`` give the alternating schedule, that train and judge them on 2-D mixtures and images (:mod:`.recipes`)."""

from .losses import (
    clip_weights,
    critic_loss,
    discriminator_loss,
    gradient_penalty,
    minimax_generator_loss,
    nonsaturating_generator_loss,
    wasserstein_generator_loss,
)
from .models import GAN, OBJECTIVES, Packed, dcgan_discriminator, dcgan_generator, mlp_discriminator, mlp_generator
from .recipes import BEST, LADDER, TEXTBOOK, Recipe, evaluate_2d, train_2d, train_images

__all__ = ["BEST", "GAN", "LADDER", "OBJECTIVES", "Packed", "Recipe", "TEXTBOOK", "clip_weights", "critic_loss",
           "dcgan_discriminator", "dcgan_generator", "discriminator_loss", "evaluate_2d", "gradient_penalty",
           "minimax_generator_loss", "mlp_discriminator", "mlp_generator", "nonsaturating_generator_loss",
           "train_2d", "train_images", "wasserstein_generator_loss"]
