r"""The feature map that the image measures read: a small classifier of the course's images, trained once and cached.

FID and KID read the pool features of an Inception network trained on ImageNet; its weights cannot be downloaded
here, and on 8 x 8 digits or 28 x 28 clothes they would be a poor fit anyway. The course's feature map is the
penultimate layer :math:`\phi(x) \in \mathbb R^{f}` of a small convolutional classifier (:class:`Classifier`) trained
by cross-entropy on the training split of the image set it will judge. Numbers computed on these features compare
models of this course with each other, under one and the same classifier: they are not comparable with published
FIDs (other features, other data, other sample sizes), and a different classifier changes every one of them. So
:func:`feature_map` trains the classifier once per image set (deterministically, from a fixed seed), caches its
weights under the data cache (``DGM_DATA``, default ``~/.cache/dgm_course``) so that every chapter and benchmark
reads the same one, and gives it a ``digest``: the first 12 hexadecimal digits of the SHA-256 of its weights,
which a chapter prints beside its numbers.
"""

from __future__ import annotations

import hashlib
import io
import os
import tempfile
from pathlib import Path

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from ._checks import one_of, positive_int
from .data import images
from .data.download import cache_dir
from .training import fit

#: How each image set's classifier is trained: optimizer steps, batch, learning rate (Adam, cosine decay).
RECIPES: dict[str, dict[str, float]] = {
    "digits": dict(steps=1500, batch=128, lr=2e-3),
    "fashion-mnist": dict(steps=3000, batch=128, lr=2e-3),
    "mnist": dict(steps=3000, batch=128, lr=2e-3),
}
#: The seed of every classifier's initialisation and batches (fixed: the feature map must not move with DGM_SEED).
SEED = 0


class Classifier(nn.Module):
    r"""Two 3 x 3 convolutions (``channels`` and twice as many, ReLU, each followed by 2 x 2 max pooling), a dense
    layer of ``features`` ReLU units (the feature map :math:`\phi`), and a linear layer to the ``classes`` logits;
    for images (1, h, w) with h and w divisible by 4."""

    digest: str  # the weights' SHA-256 (12 hex digits), set by feature_map

    def __init__(self, shape: tuple[int, int, int], classes: int = 10, channels: int = 32, features: int = 64) -> None:
        super().__init__()
        c, h, w = shape
        if h % 4 or w % 4:
            raise ValueError(f"the classifier pools twice: image height and width must be divisible by 4; got {shape}")
        self.shape, self.dim = tuple(shape), positive_int(features, "features")
        self.body = nn.Sequential(
            nn.Conv2d(c, channels, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(channels, 2 * channels, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(), nn.Linear(2 * channels * (h // 4) * (w // 4), features), nn.ReLU())
        self.head = nn.Linear(features, positive_int(classes, "classes"))
        self.digest = ""

    def features(self, x: Tensor) -> Tensor:
        r""":math:`\phi(x)`, shape (n, features), for images ``x`` (n, \*shape) in [0, 1]."""
        if tuple(x.shape[1:]) != self.shape:
            raise ValueError(f"the classifier reads images of shape (n, {', '.join(map(str, self.shape))}); got "
                             f"{tuple(x.shape)} (reshape flat rows first)")
        return self.body(x)

    def forward(self, x: Tensor) -> Tensor:
        """The class logits, shape (n, classes)."""
        return self.head(self.features(x))


def weights_digest(model: nn.Module) -> str:
    """The first 12 hexadecimal digits of the SHA-256 of ``model``'s weights (names, shapes and float32 values)."""
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode())
        digest.update(str(tuple(tensor.shape)).encode())
        digest.update(tensor.detach().to(torch.float32).contiguous().numpy().tobytes())
    return digest.hexdigest()[:12]


def train_classifier(name: str, steps: int | None = None, progress: bool | None = None) -> Classifier:
    """A :class:`Classifier` trained by cross-entropy on the training split of the image set ``name``, for
    ``steps`` steps (default: its :data:`RECIPES` entry), from :data:`SEED`."""
    one_of(name, RECIPES, "image set")
    recipe = RECIPES[name]
    train = images.load(name, "train")
    n, shape = len(train), tuple(train.images.shape[1:])
    # fit draws rows of one tensor: the flattened image and its label, side by side
    rows = torch.cat([train.images.reshape(n, -1), train.labels[:, None].float()], dim=1)
    torch.manual_seed(SEED)
    model = Classifier(shape)  # type: ignore[arg-type]

    def loss(batch: Tensor) -> Tensor:
        x, y = batch[:, :-1].reshape(len(batch), *shape), batch[:, -1].long()
        return F.cross_entropy(model(x), y)

    fit(model, loss, rows, steps=positive_int(steps or int(recipe["steps"]), "steps"), batch_size=int(recipe["batch"]),
        lr=recipe["lr"], cosine=True, seed=SEED, progress=progress)
    model.eval()
    model.digest = weights_digest(model)
    return model


def _cache_path(name: str) -> Path:
    recipe = ",".join(f"{k}={v}" for k, v in sorted(RECIPES[name].items()))
    key = hashlib.sha256(f"{name};{recipe};seed={SEED};{Classifier.__init__.__defaults__}".encode()).hexdigest()[:8]
    return cache_dir() / "features" / f"{name}-{key}.pt"


def feature_map(name: str, *, retrain: bool = False, progress: bool | None = None) -> Classifier:
    """The image set ``name``'s classifier, read from its cache file or trained once and cached (module docstring);
    ``retrain`` trains it again and replaces the file. The file's weights must have the digest they were saved with,
    or it is refused with a ``ValueError`` that names it (delete it, or pass ``retrain=True``)."""
    one_of(name, RECIPES, "image set")
    path = _cache_path(name)
    if path.exists() and not retrain:
        saved = torch.load(path, map_location="cpu", weights_only=True)
        model = Classifier(tuple(saved["shape"]))
        model.load_state_dict(saved["state_dict"])
        model.eval()
        model.digest = weights_digest(model)
        if model.digest != saved["digest"]:
            raise ValueError(f"the cached classifier {path} does not have the digest it was saved with "
                             f"({model.digest} != {saved['digest']}): delete the file or call "
                             f"feature_map({name!r}, retrain=True)")
        return model
    model = train_classifier(name, progress=progress)
    path.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    torch.save({"shape": list(model.shape), "state_dict": model.state_dict(), "digest": model.digest}, buffer)
    with tempfile.NamedTemporaryFile(dir=path.parent, delete=False) as tmp:  # written whole, then renamed
        tmp.write(buffer.getvalue())
    os.replace(tmp.name, path)
    return model


@torch.no_grad()
def embed(model: Classifier, x: Tensor, chunk: int = 2000) -> Tensor:
    r""":math:`\phi(x)` for images ``x`` (n, \*shape) in [0, 1], or flat rows (n, h w) reshaped to them, ``chunk`` at a
    time; shape (n, features), float64."""
    if x.ndim == 2:
        x = x.reshape(len(x), *model.shape)
    weights = next(model.parameters())
    return torch.cat([model.features(part.to(weights)) for part in x.split(positive_int(chunk, "chunk"))]).double()


def accuracy(model: Classifier, name: str) -> float:
    """The classifier's accuracy on the test split of the image set ``name``."""
    test = images.load(name, "test")
    with torch.no_grad():
        predicted = torch.cat([model(part).argmax(1) for part in test.images.split(2000)])
    return float((predicted == test.labels).double().mean())
