"""Four images of Gatys et al.'s Figure 3, those that the course's source article reproduces: the Neckarfront in
Tübingen (A) and the paintings whose styles B, C and D take (Turner, van Gogh, Munch). The figure has two more
panels, in the styles of Picasso's *Femme nue assise* (E) and Kandinsky's *Composition VII* (F), which the article
leaves out and the package does not ship.

Reduced copies ship with the package (``figure3/``, with ``CREDITS.md``), so the style-transfer chapter shows the
real figure offline; ``load(name, full=True)`` downloads the full-size originals through
:func:`dgm_course.data.download.fetch`, which keeps a file only when its SHA-256 is the one recorded here. Every
image is shown with :func:`credit`.
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass
from importlib import resources

import numpy as np
import torch
from torch import Tensor

from .._checks import one_of
from .download import fetch

_ORIGINALS = ("https://raw.githubusercontent.com/jcjohnson/neural-style/07c4b8299f8fbdafec0c514fc820ff1d7ff62e46/"
              "examples/inputs/")


@dataclass(frozen=True)
class Artwork:
    """One image: its title, its author, its copyright status (a licence, or public domain), and the SHA-256 of the
    reduced copy shipped with the package and of the full-size original."""
    title: str
    author: str
    status: str
    copy_sha256: str  # the reduced copy shipped with the package
    original_sha256: str  # the full-size original, as published

    @property
    def credit(self) -> str:
        """The credit line: "title, author (status)"."""
        return f"{self.title}, {self.author} ({self.status})"


IMAGES: dict[str, Artwork] = {
    "tubingen": Artwork("Neckarfront, Tübingen", "photograph by Andreas Praefcke", "CC BY 3.0, Wikimedia Commons",
                        "5a8bc752cdc3b784db3a970ec3d609dbc6b2067f494c71444eb8f2b501af6914",
                        "e67d1869f01fd805385c681a80d9ebcf0f70ea4a5fe6127f0606bb1c7f4bf506"),
    "shipwreck": Artwork("The Shipwreck of the Minotaur", "J. M. W. Turner, c. 1810", "public domain",
                         "2648b4940c5f8d1f4c88818d6ee4466ffc58a1f6d185ebd951d4d89e70422ddb",
                         "4f7cf34e3cd4a5daaf3f421f059ca9a01aaa2a3afd7243d6670c9c8bc001a213"),
    "starry_night": Artwork("The Starry Night", "Vincent van Gogh, 1889", "public domain",
                            "ae00bedef7a1e2ca62d25a6388f8216be7468979fb3539a8a8c1181d95b17ba1",
                            "0592ab0f7b51b3ce72608a95e53880bd93971e5b48f93a0ce8dfd3cbccf3d098"),
    "the_scream": Artwork("The Scream", "Edvard Munch, 1893", "public domain",
                          "360594e23983f559d532819460d1452ae48052da5a6fac747d25b9995b0d2b54",
                          "f3075cddeb974a9ee1d6418f7f33fd05185a7ac7dcb4288bd2805d499a9dcaee"),
}
#: The content photograph (A) and the three styles (B, C, D), in the figure's order.
CONTENT, STYLES = "tubingen", ("shipwreck", "starry_night", "the_scream")


def _artwork(name: str) -> Artwork:
    return IMAGES[one_of(name, IMAGES, "image")]


def load(name: str, full: bool = False) -> Tensor:
    """The image ``name`` as a float tensor (3, h, w) in [0, 1]: the copy shipped with the package (longest side
    512 pixels), or with ``full`` the original, downloaded once into the cache and checked.

    Raises:
        ValueError: an unknown name, or a shipped copy whose bytes are not the recorded ones (a damaged install).
        DownloadUnavailable: ``full`` and no network (the message says where to put the file by hand).
    """
    from PIL import Image

    art = _artwork(name)
    if full:
        path = fetch(_ORIGINALS + f"{name}.jpg", art.original_sha256, f"figure3-{name}.jpg")
        data = path.read_bytes()
    else:
        data = resources.files(__package__).joinpath("figure3", f"{name}.jpg").read_bytes()
        if hashlib.sha256(data).hexdigest() != art.copy_sha256:
            raise ValueError(f"the shipped copy of {name!r} is damaged (its SHA-256 is not the recorded one); "
                             "reinstall dgm_course")
    with Image.open(io.BytesIO(data)) as image:
        array = np.asarray(image.convert("RGB"), dtype=np.float32) / 255
    return torch.from_numpy(array).permute(2, 0, 1).contiguous()


def credit(name: str) -> str:
    """How to credit the image ``name`` where it is shown."""
    return _artwork(name).credit
