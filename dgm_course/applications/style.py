r"""Neural style transfer (Gatys, Ecker and Bethge 2016): an image whose deep features match those of a
content photograph and whose feature *correlations* match those of a painting, found by optimising the image
itself. It is not a GAN: no generator is trained and nothing is adversarial; each image is a separate
optimisation (GAN-based methods, e.g. CycleGAN, instead train a network that maps photographs to paintings).

With :math:`F^l \in \mathbb R^{N_l \times M_l}` the :math:`N_l` feature maps of layer :math:`l`, flattened over
its :math:`M_l` positions, for the image :math:`x` being optimised, :math:`P^l` those of the content photograph
and :math:`A^l` the Gram matrix of the painting's features:

.. math::
    G^l = F^l (F^l)^\top, \qquad
    E_l = \frac{1}{4 N_l^2 M_l^2} \sum_{i,j} (G^l_{ij} - A^l_{ij})^2, \qquad
    \mathcal L_{\text{content}} = \tfrac12 \sum_{i,k} (F^l_{ik} - P^l_{ik})^2,
    :label: style-losses

and the image minimises :math:`\alpha\,\mathcal L_{\text{content}} + \beta \sum_l w_l E_l`.

The features are VGG-19's (Simonyan and Zisserman 2015): :func:`vgg19` loads the ImageNet weights through
torchvision when it is installed and can fetch them, and otherwise uses random weights (He, Wang and
Hopcroft 2016 show that random convolutional features already capture texture), and says which it used.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from .. import budget
from .._checks import one_of, positive_int

#: VGG-19's convolutions per block (configuration E); each block ends with a 2 x 2 pooling.
_BLOCKS = ((64, 64), (128, 128), (256, 256, 256, 256), (512, 512, 512, 512), (512, 512, 512, 512))
#: Gatys et al.'s layers, read after the ReLU as in their implementation: the style from the first layer of each
#: block (relu1_1 ... relu5_1), the content from relu4_2.
STYLE_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")
CONTENT_LAYER = "relu4_2"
#: The ImageNet statistics VGG-19 was trained with (images in [0, 1] are normalised by them).
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


class VGG19Features(nn.Module):
    r"""VGG-19's convolutional part, with its layers named as in the paper (``conv3_1``, ``relu3_1``,
    ``pool3``...) and indexed as in torchvision's ``features`` (so its weights load directly).
    ``pooling="avg"`` replaces max-pooling by average pooling, as Gatys et al. recommend for synthesis."""

    mean: Tensor  # buffers: ImageNet's mean and standard deviation per channel
    std: Tensor

    def __init__(self, pooling: str = "avg") -> None:
        super().__init__()
        one_of(pooling, ("avg", "max"), "pooling")
        layers: list[nn.Module] = []
        self.names: list[str] = []
        channels = 3
        for b, widths in enumerate(_BLOCKS, start=1):
            for c, width in enumerate(widths, start=1):
                layers += [nn.Conv2d(channels, width, 3, padding=1), nn.ReLU()]
                self.names += [f"conv{b}_{c}", f"relu{b}_{c}"]
                channels = width
            layers.append(nn.AvgPool2d(2) if pooling == "avg" else nn.MaxPool2d(2))
            self.names.append(f"pool{b}")
        self.features = nn.Sequential(*layers)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN)[None, :, None, None])
        self.register_buffer("std", torch.tensor(IMAGENET_STD)[None, :, None, None])

    def forward(self, images: Tensor, layers: Sequence[str]) -> dict[str, Tensor]:
        """The outputs of the named ``layers`` for images (n, 3, h, w) in [0, 1]; the network stops after the
        deepest one."""
        if images.ndim != 4 or images.shape[1] != 3:
            raise ValueError(f"images must have shape (n, 3, h, w); got {tuple(images.shape)}")
        unknown = [name for name in layers if name not in self.names]
        if unknown:
            raise ValueError(f"unknown VGG-19 layer(s) {unknown}; names look like conv4_2, relu3_1, pool2")
        last = max(self.names.index(name) for name in layers)
        wanted, out = set(layers), {}
        h = (images - self.mean) / self.std
        for name, layer in zip(self.names[: last + 1], self.features):
            h = layer(h)
            if name in wanted:
                out[name] = h
        return out


def gram(features: Tensor) -> Tensor:
    r"""The Gram matrices :math:`G = F F^\top` of feature maps (n, c, h, w): (n, c, c), summed over the
    :math:`M = hw` positions (:eq:`style-losses`)."""
    if features.ndim != 4:
        raise ValueError(f"features must have shape (n, c, h, w); got {tuple(features.shape)}")
    f = features.flatten(2)
    return f @ f.transpose(1, 2)


def style_layer_loss(features: Tensor, target_gram: Tensor) -> Tensor:
    r""":math:`E_l` of :eq:`style-losses` for features (n, c, h, w) against the painting's Gram matrix (c, c)
    or (n, c, c): summed over the batch."""
    n, c, h, w = features.shape
    return ((gram(features) - target_gram) ** 2).sum() / (4 * c**2 * (h * w) ** 2)


def content_loss(features: Tensor, target: Tensor) -> Tensor:
    r""":math:`\mathcal L_{\text{content}} = \frac12 \sum (F - P)^2` of :eq:`style-losses`."""
    if features.shape != target.shape:
        raise ValueError(f"features and target must have one shape; got {tuple(features.shape)} and "
                         f"{tuple(target.shape)}")
    return 0.5 * ((features - target) ** 2).sum()


def vgg19(weights: str = "auto", pooling: str = "avg", seed: int = 0) -> tuple[VGG19Features, str]:
    """VGG-19's features, frozen, in evaluation mode, and a sentence saying which weights it has.

    ``weights="imagenet"`` loads torchvision's ImageNet weights (an error if torchvision or the download is not
    available); ``"random"`` draws He-initialised random weights from :func:`budget.seed` ``(seed)``; ``"auto"`` (the
    default) tries the first and falls back to the second.
    """
    one_of(weights, ("auto", "imagenet", "random"), "weights")
    model = VGG19Features(pooling)
    seed = budget.seed(seed)
    source = ""
    if weights != "random":
        try:
            from torchvision.models import VGG19_Weights

            state = VGG19_Weights.IMAGENET1K_V1.get_state_dict(progress=False)
            model.features.load_state_dict({k.removeprefix("features."): v for k, v in state.items()
                                            if k.startswith("features.")})
            source = "VGG-19 with ImageNet weights (torchvision)"
        except Exception as err:  # noqa: BLE001 - no torchvision, no network: say so and fall back
            if weights == "imagenet":
                raise RuntimeError(f"the ImageNet weights of VGG-19 are not available ({type(err).__name__}: {err}); "
                                   "install torchvision and connect to the network, or use weights='random'") from err
            source = (f"VGG-19 with random weights (seed {seed}), as in He et al. 2016: the ImageNet weights are not "
                      f"available here ({type(err).__name__})")
    if not source:
        source = f"VGG-19 with random weights (seed {seed}), as in He et al. 2016"
    if "random" in source:
        gen = torch.Generator().manual_seed(seed)
        for layer in model.features:
            if isinstance(layer, nn.Conv2d):
                nn.init.kaiming_normal_(layer.weight, nonlinearity="relu", generator=gen)
                if layer.bias is not None:
                    nn.init.zeros_(layer.bias)
    model.eval().requires_grad_(False)
    return model, source


@dataclass
class Transfer:
    r"""The result of :func:`transfer`: the image (1, 3, h, w), and the content and style losses (already
    weighted by :math:`\alpha` and :math:`\beta`) at each step, before it."""

    image: Tensor
    content: list[float]
    style: list[float]


def transfer(content: Tensor, style: Tensor, features: VGG19Features, *, steps: int = 200, ratio: float = 1e-3,
             lr: float = 0.02, style_layers: Sequence[str] = STYLE_LAYERS, content_layer: str = CONTENT_LAYER,
             init: str = "content", seed: int = 0) -> Transfer:
    r"""Gatys et al.'s image: minimise :math:`\alpha \mathcal L_{\text{content}} + \beta \sum_l w_l E_l`
    (:eq:`style-losses`, :math:`w_l = 1/|\text{layers}|`) over the pixels of :math:`x`, with
    :math:`\alpha / \beta` = ``ratio`` (:math:`\alpha = 1`).

    ``content`` and ``style`` are images (3, h, w) or (1, 3, h, w) in [0, 1], of any sizes; ``init`` starts from
    the content photograph (``"content"``) or from white noise (``"noise"``, as in the paper). The paper uses
    L-BFGS; this takes ``steps`` Adam steps of size ``lr`` (one pass through the network each, a cost known in
    advance) and clamps the pixels to [0, 1] after each.
    """
    steps = positive_int(steps, "steps")
    if not ratio > 0 or not lr > 0:
        raise ValueError(f"ratio (alpha / beta) and lr must be positive; got ratio={ratio!r}, lr={lr!r}")
    one_of(init, ("content", "noise"), "init")
    content, style = _as_batch(content, "content"), _as_batch(style, "style")
    layers = list(style_layers) + [content_layer]
    with torch.no_grad():
        target_content = features(content, [content_layer])[content_layer]
        target_grams = {name: gram(f)[0] for name, f in features(style, style_layers).items()}
    gen = torch.Generator().manual_seed(budget.seed(seed))
    image = (content.clone() if init == "content" else torch.rand(content.shape, generator=gen)).requires_grad_(True)
    optimizer = torch.optim.Adam([image], lr=lr)
    weight = 1.0 / (ratio * len(style_layers))  # beta w_l
    content_losses: list[float] = []
    style_losses: list[float] = []
    for _ in range(steps):
        optimizer.zero_grad(set_to_none=True)
        f = features(image, layers)
        c = content_loss(f[content_layer], target_content)
        s = weight * sum((style_layer_loss(f[name], target_grams[name]) for name in style_layers), torch.zeros(()))
        (c + s).backward()
        optimizer.step()
        with torch.no_grad():
            image.clamp_(0, 1)
        c_value, s_value = float(c.detach()), float(s.detach())
        if not (math.isfinite(c_value) and math.isfinite(s_value)):
            raise FloatingPointError(f"style transfer diverged at step {len(content_losses) + 1} (content {c_value}, "
                                     f"style {s_value}); lower lr")
        content_losses.append(c_value)
        style_losses.append(s_value)
    return Transfer(image.detach(), content_losses, style_losses)


def _as_batch(image: Tensor, name: str) -> Tensor:
    if not isinstance(image, Tensor) or image.ndim not in (3, 4) or image.shape[-3] != 3 or (
            image.ndim == 4 and image.shape[0] != 1):
        shape = tuple(image.shape) if isinstance(image, Tensor) else type(image).__name__
        raise ValueError(f"{name} must be one RGB image (3, h, w) or (1, 3, h, w); got {shape}")
    if not image.is_floating_point() or not torch.isfinite(image).all():
        raise ValueError(f"{name} must hold finite floating-point values in [0, 1]")
    return image.reshape(1, *image.shape[-3:])


def patch_energy(image: Tensor, reference: Tensor, size: int = 8, n: int = 1000, seed: int = 0) -> float:
    r"""A style measure that depends on no network: the energy distance (:func:`dgm_course.metrics.energy_distance`)
    between the distributions of ``size`` x ``size`` colour patches of ``image`` and of ``reference`` (``n`` patches
    of each, at random positions; vectors of :math:`3 \cdot` ``size``:math:`^2` numbers). A stylised image should be
    nearer the painting, by this measure, than the photograph it started from."""
    from ..metrics import energy_distance

    size, n = positive_int(size, "size"), positive_int(n, "n")
    gen = torch.Generator().manual_seed(budget.seed(seed))

    def sample(picture: Tensor, name: str) -> Tensor:
        picture = _as_batch(picture, name)[0].double()
        h, w = picture.shape[1:]
        if min(h, w) < size:
            raise ValueError(f"{name} ({h} x {w}) is smaller than a patch of {size} x {size}")
        windows = picture.unfold(1, size, 1).unfold(2, size, 1)  # (3, h - size + 1, w - size + 1, size, size)
        i = torch.randint(windows.shape[1], (n,), generator=gen)
        j = torch.randint(windows.shape[2], (n,), generator=gen)
        return windows[:, i, j].permute(1, 0, 2, 3).reshape(n, -1)

    return float(energy_distance(sample(image, "image"), sample(reference, "reference")))


def content_similarity(image: Tensor, photograph: Tensor, blur: float = 2.0) -> float:
    r"""A content measure that depends on no network: the correlation coefficient between the luma of ``image`` and
    of ``photograph``, both blurred by a Gaussian of ``blur`` pixels (so that texture added by the style does not
    count and the layout does): 1 for the same layout, near 0 for an unrelated one. (SSIM of blurred images is
    dominated by its stabilising constants and stays high even for a mirrored photograph.)"""
    from skimage.filters import gaussian

    from .superres import luminance

    a, b = _as_batch(image, "image"), _as_batch(photograph, "photograph")
    if a.shape != b.shape:
        raise ValueError(f"image and photograph must have one shape; got {tuple(a.shape)} and {tuple(b.shape)}")
    u, v = (torch.from_numpy(gaussian(luminance(x)[0, 0].double().numpy(), sigma=blur)).flatten() for x in (a, b))
    return float(torch.corrcoef(torch.stack([u, v]))[0, 1])
