r"""Image data sets, offline first: tensors of shape (n, 1, height, width) with values in :math:`[0, 1]`.

=================  ==========  ===================================================================================
name               size        sources, in the order they are tried
=================  ==========  ===================================================================================
``digits``         8 x 8       scikit-learn's ``load_digits`` (1,797 images that ship in its wheel; 17 grey levels)
``fashion-mnist``  28 x 28     a folder of the four IDX files: ``root``, then ``$DGM_DATA/fashion-mnist``, then the
                               Debian package ``dataset-fashion-mnist`` (``/usr/share/datasets/fashion-mnist``);
                               otherwise torchvision's download, when torchvision and a network are there
``mnist``          28 x 28     the same folders (``mnist``), otherwise torchvision's download
=================  ==========  ===================================================================================

:func:`load` says which source it used (``ImageData.source``, printed unless ``verbose=False``) and raises
:class:`DataUnavailable`, naming every source it tried and how to provide one, when none is there.

The digits have no official test set: a fixed permutation (seed 0) holds out 297 of them. For a Bernoulli
decoder, :func:`binarize` draws each pixel as a coin with the grey level as its probability (the stochastic
binarization of Salakhutdinov and Murray 2008, used by Burda et al. 2016). For a continuous density,
:func:`dequantize` spreads each of the 256 grey levels uniformly over its own interval (Theis et al. 2016),
so that a log-likelihood of the dequantized images is bounded and bits per dimension mean the same as for a
discrete model: :math:`\text{bits/dim} = (\text{NLL} + d \ln 256) / (d \ln 2)` for an NLL in nats on
:math:`[0, 1]^d`.
"""

from __future__ import annotations

import gzip
import os
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from .._checks import one_of
from .download import cache_dir

NAMES = ("digits", "fashion-mnist", "mnist")
SPLITS = ("train", "test")
DEBIAN_DIR = Path("/usr/share/datasets")
DEBIAN_PACKAGES = {"fashion-mnist": "dataset-fashion-mnist"}
DIGITS_TEST = 297
IDX_FILES = {"train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
             "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")}


class DataUnavailable(RuntimeError):
    """No source of a data set could be reached; the message names every source tried."""


@dataclass
class ImageData:
    """Images (n, 1, h, w) in [0, 1], their integer labels (n,), and where they came from."""

    name: str
    split: str
    images: Tensor
    labels: Tensor
    source: str

    def __len__(self) -> int:
        return len(self.images)

    def __repr__(self) -> str:
        n, c, h, w = self.images.shape
        return f"{self.name} ({self.split}): {n:,} images {c}x{h}x{w} from {self.source}"


def load(name: str, split: str = "train", *, root: str | os.PathLike[str] | None = None,
         download: bool = True, verbose: bool = True) -> ImageData:
    """Load ``split`` ("train" or "test") of the data set ``name`` (module docstring for the sources).

    Args:
        root: a folder holding the IDX files of ``name``, tried first (28x28 sets only).
        download: allow torchvision to download when no folder has the files (into ``$DGM_DATA`` or
            ``~/.cache/dgm_course``).
        verbose: print which source was used.
    """
    one_of(name, NAMES, "data set")
    one_of(split, SPLITS, "split")
    data = _digits(split) if name == "digits" else _idx_or_torchvision(name, split, root, download)
    if verbose:
        print(data)
    return data


def _grey_levels(images: Tensor, name: str) -> None:
    """Raise unless ``images`` is a non-empty floating tensor with no NaN or infinite value."""
    if not isinstance(images, Tensor) or not images.is_floating_point() or images.numel() == 0:
        what = (f"{images.dtype} tensor of shape {tuple(images.shape)}" if isinstance(images, Tensor)
                else type(images).__name__)
        raise ValueError(f"{name} expects a non-empty floating tensor of grey levels in [0, 1]; got a {what}")
    if not torch.isfinite(images).all():
        raise ValueError(f"{name}: the images hold NaN or infinite values; clean them first")


def binarize(images: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """Each pixel an independent Bernoulli draw with the grey level in [0, 1] as its probability."""
    _grey_levels(images, "binarize")
    if images.min() < 0 or images.max() > 1:
        raise ValueError("binarize expects grey levels in [0, 1]; got values in "
                         f"[{float(images.min()):.3g}, {float(images.max()):.3g}]")
    return torch.bernoulli(images, generator=generator)


def dequantize(images: Tensor, levels: int = 256, generator: torch.Generator | None = None) -> Tensor:
    r"""Uniform dequantization: the grey level :math:`k / (L - 1)` becomes :math:`(k + u) / L`,
    :math:`u \sim U[0, 1)`, for images in [0, 1] with :math:`L` = ``levels`` levels."""
    _grey_levels(images, "dequantize")
    if isinstance(levels, bool) or not isinstance(levels, int) or levels < 2:
        raise ValueError(f"levels must be a whole number >= 2 (256 for 8-bit images); got {levels!r}")
    if images.min() < 0 or images.max() > 1:
        raise ValueError("dequantize expects grey levels in [0, 1]; got values in "
                         f"[{float(images.min()):.3g}, {float(images.max()):.3g}]")
    k = torch.round(images * (levels - 1))
    u = torch.rand(images.shape, generator=generator, dtype=images.dtype, device=images.device)
    return (k + u) / levels


def _digits(split: str) -> ImageData:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = torch.tensor(bunch.images, dtype=torch.float32)[:, None] / 16.0
    labels = torch.tensor(bunch.target)
    order = torch.randperm(len(images), generator=torch.Generator().manual_seed(0))
    index = order[DIGITS_TEST:] if split == "train" else order[:DIGITS_TEST]
    return ImageData("digits", split, images[index], labels[index], "scikit-learn's load_digits (in its wheel)")


def _folders(name: str, root: str | os.PathLike[str] | None) -> list[Path]:
    folders = [Path(root)] if root is not None else []
    if os.environ.get("DGM_DATA"):
        folders.append(Path(os.environ["DGM_DATA"]) / name)
    folders.append(DEBIAN_DIR / name)
    return folders


def _idx_or_torchvision(name: str, split: str, root: str | os.PathLike[str] | None, download: bool) -> ImageData:
    tried = []
    for folder in _folders(name, root):
        files = [folder / f for f in IDX_FILES[split]]
        if all(f.is_file() for f in files):
            try:
                images, labels = read_idx(files[0]), read_idx(files[1])
                _check_idx(images, labels, files)
            except ValueError as error:  # damaged or not the data set: say so, and try the next source
                tried.append(f"{folder} ({error})")
                continue
            return ImageData(name, split, torch.from_numpy(images.astype(np.float32) / 255.0)[:, None],
                             torch.from_numpy(labels.astype(np.int64)), f"IDX files in {folder}")
        tried.append(f"{folder} (no {IDX_FILES[split][0]})")
    if download:
        try:
            import torchvision  # noqa: F401  (optional: the online source)
            from torchvision import datasets
        except ImportError:
            tried.append("torchvision (not installed)")
        else:
            cls = {"fashion-mnist": datasets.FashionMNIST, "mnist": datasets.MNIST}[name]
            try:
                ds = cls(str(cache_dir() / "torchvision"), train=split == "train", download=True)
            except Exception as error:  # noqa: BLE001  (offline: a URLError, an OSError, ...)
                tried.append(f"torchvision download ({type(error).__name__}: {error})")
            else:
                return ImageData(name, split, ds.data.float()[:, None] / 255.0, ds.targets.long(),
                                 f"torchvision's {cls.__name__} (downloaded to {cache_dir() / 'torchvision'})")
    else:
        tried.append("torchvision download (download=False)")
    package = DEBIAN_PACKAGES.get(name)
    offline = (f"install the Debian package {package} (apt-get install {package}) or " if package else "") + \
        f"put the four IDX files of {name} in a folder passed as root= or in $DGM_DATA/{name}"
    raise DataUnavailable(f"no source of {name} ({split}) could be used; tried: " + "; ".join(tried)
                          + f". Offline: {offline}. Online: pip install torchvision and connect to the internet.")


def _check_idx(images: np.ndarray, labels: np.ndarray, files: list[Path]) -> None:
    """Raise ``ValueError`` unless the files hold 28 x 28 images and one label in 0..9 for each."""
    if images.ndim != 3 or images.shape[1:] != (28, 28):
        raise ValueError(f"{files[0].name} holds images of shape {images.shape[1:]}, not 28 x 28")
    if labels.shape != (len(images),):
        raise ValueError(f"{len(images)} images but labels of shape {labels.shape} in {files[1].name}")
    if labels.size and labels.max() > 9:
        raise ValueError(f"{files[1].name} holds a label {int(labels.max())}; the classes are 0 to 9")


def read_idx(path: str | os.PathLike[str]) -> np.ndarray:
    """Read an IDX file (LeCun's format for MNIST; gzipped or not): a magic number whose third byte is the
    type (0x08: unsigned bytes) and fourth the number of dimensions, the big-endian 32-bit sizes, the data."""
    opener = gzip.open if str(path).endswith(".gz") else open
    try:
        with opener(path, "rb") as f:
            raw = f.read()
    except (EOFError, OSError, zlib.error) as error:  # a truncated or damaged gzip file
        raise ValueError(f"{path} cannot be read ({type(error).__name__}: {error}): the file is damaged or "
                         "truncated; delete it and fetch it again") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise ValueError(f"{path} is not an IDX file of unsigned bytes (bad magic number {raw[:4]!r})")
    ndim = raw[3]
    shape = tuple(int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if data.size != int(np.prod(shape)):
        raise ValueError(f"{path}: the header announces {shape} but the file holds {data.size} bytes of data")
    return data.reshape(shape)


#: Colour photographs that ship inside scikit-image's wheel (no download), for :func:`photo`.
PHOTOS = ("astronaut", "chelsea", "coffee", "rocket", "camera", "hubble_deep_field", "immunohistochemistry",
          "retina")
#: Grey textures that ship with scikit-image: the offline style images.
TEXTURES = ("brick", "grass", "gravel")


def photo(name: str) -> Tensor:
    """The scikit-image photograph (or texture) ``name`` as a float tensor (3, h, w) in [0, 1] (grey images
    repeated over the three channels)."""
    one_of(name, PHOTOS + TEXTURES, "photo")
    from skimage import data  # imported here: only the applications need scikit-image

    array = np.asarray(getattr(data, name)(), dtype=np.float32) / 255.0
    image = torch.from_numpy(array)
    return image.permute(2, 0, 1).contiguous() if image.ndim == 3 else image.expand(3, *image.shape).contiguous()
