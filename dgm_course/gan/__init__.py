r"""GANs and Wasserstein GANs: the losses (:mod:`.losses`), the networks and the alternating schedule
(:mod:`.models`)."""

from .losses import (clip_weights, critic_loss, discriminator_loss, gradient_penalty, minimax_generator_loss,
                     nonsaturating_generator_loss, wasserstein_generator_loss)
from .models import (GAN, OBJECTIVES, Packed, dcgan_discriminator, dcgan_generator, mlp_discriminator,
                     mlp_generator)

__all__ = ["GAN", "OBJECTIVES", "Packed", "clip_weights", "critic_loss", "dcgan_discriminator", "dcgan_generator",
           "discriminator_loss", "gradient_penalty", "minimax_generator_loss", "mlp_discriminator", "mlp_generator",
           "nonsaturating_generator_loss", "wasserstein_generator_loss"]
