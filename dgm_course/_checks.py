"""Input validation shared by the public entry points: clear errors that say what to do."""

from __future__ import annotations

import numbers
from collections.abc import Iterable
from typing import TypeVar

import torch
from torch import Tensor

T = TypeVar("T")


def as_points(x: object, *, dim: int | None = None, name: str = "x") -> Tensor:
    """Check that ``x`` is a finite (batch, features) tensor and return it as a floating tensor.

    Raises:
        ValueError: ``x`` is not 2-D, has the wrong number of features, is empty, or holds NaN/inf.
    """
    if not isinstance(x, Tensor):
        try:
            x = torch.as_tensor(x)
        except Exception as err:  # noqa: BLE001 - re-raised with a clearer message
            raise ValueError(f"{name} must be a tensor of shape (batch, features); got {type(x).__name__}") from err
    expected = f"(batch, {dim})" if dim is not None else "(batch, features)"
    if x.ndim != 2:
        raise ValueError(f"{name} must have shape {expected}; got shape {tuple(x.shape)}")
    if dim is not None and x.shape[1] != dim:
        raise ValueError(f"{name} must have shape {expected}; got shape {tuple(x.shape)}")
    if x.shape[0] == 0:
        raise ValueError(f"{name} is empty: shape {tuple(x.shape)}; pass at least one point")
    if not x.is_floating_point():
        x = x.to(torch.get_default_dtype())
    if not torch.isfinite(x).all():
        bad = (~torch.isfinite(x)).any(dim=1).nonzero().flatten()
        raise ValueError(
            f"{name} holds NaN or infinite values in {len(bad)} row(s), first at row {int(bad[0])}; "
            "clean or drop those rows first"
        )
    return x


def one_of(value: T, choices: Iterable[object], what: str, hint: str = "") -> T:
    """Return ``value`` if it is one of ``choices``; otherwise raise the course's one message for a wrong name:
    ``unknown <what> <value>; choose one of: <choices>`` (and ``hint``, where there is more to say)."""
    choices = list(choices)
    if value not in choices:
        raise ValueError(f"unknown {what} {value!r}; choose one of: {', '.join(map(str, choices))}"
                         + (f" ({hint})" if hint else ""))
    return value


def positive_int(value: object, name: str) -> int:
    """Check that ``value`` is a positive whole number (a Python or NumPy integer) and return it as an ``int``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{name} must be a positive integer; got {value!r}")
    return int(value)


def time_power(value: float) -> float:
    """Check the exponent ``time_power`` with which the diffusion and flow-matching losses draw their times (1:
    uniform) and return it as a ``float``."""
    if not value > 0:
        raise ValueError(f"time_power must be a positive number (1 draws t uniformly); got {value!r}")
    return float(value)


def same_dtype(x: Tensor, model: torch.nn.Module, name: str = "x") -> None:
    """Raise a ``ValueError`` saying how to convert, unless ``x`` has the dtype of ``model``'s floating weights."""
    weights = next((p for p in model.parameters() if p.is_floating_point()), None)
    if weights is not None and x.dtype != weights.dtype:
        raise ValueError(f"{name} is {x.dtype} but the model's weights are {weights.dtype}: convert one of them, "
                         f"{name}.to({weights.dtype}) or model.to({x.dtype})")


def as_images(x: object, shape: tuple[int, ...], *, name: str = "x") -> Tensor:
    """Check that ``x`` is a finite floating tensor of shape (batch, *shape) (images: (batch, c, h, w)).

    Raises:
        ValueError: wrong shape (the message names the expected and the received one), empty, NaN or inf.
    """
    if not isinstance(x, Tensor):
        raise ValueError(f"{name} must be a tensor of shape (batch, {', '.join(map(str, shape))}); "
                         f"got {type(x).__name__}")
    expected = "(batch, " + ", ".join(map(str, shape)) + ")"
    if x.ndim != len(shape) + 1 or tuple(x.shape[1:]) != tuple(shape):
        hint = ""
        if x.ndim == len(shape) and tuple(x.shape) == tuple(shape):
            hint = "; a single example needs a batch dimension: x[None]"
        elif x.ndim == 2 and x.shape[1] == int(torch.tensor(shape).prod()):
            hint = f"; flat rows can be reshaped with x.view(-1, {', '.join(map(str, shape))})"
        raise ValueError(f"{name} must have shape {expected}; got shape {tuple(x.shape)}{hint}")
    if x.shape[0] == 0:
        raise ValueError(f"{name} is empty: shape {tuple(x.shape)}; pass at least one example")
    if not x.is_floating_point():
        x = x.to(torch.get_default_dtype())
    if not torch.isfinite(x).all():
        bad = (~torch.isfinite(x)).flatten(1).any(dim=1).nonzero().flatten()
        raise ValueError(f"{name} holds NaN or infinite values in {len(bad)} example(s), first at {int(bad[0])}; "
                         "clean or drop those examples first")
    return x
