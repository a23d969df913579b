"""Checkpoints of a training run: written so that no crash can leave a half-written file, read as data only,
and refused when they belong to another run.

:func:`fit <dgm_course.training.fit>` keeps its loop free of all this: it asks a :class:`Checkpoint` for the
state to resume from and hands it the state to save. A checkpoint holds the run's *fingerprint*, everything
that defines the run (the model's architecture and parameter shapes, each phase's optimiser, its
hyper-parameters and schedule, the steps, the batch size, the data and the seed); resuming with anything
else is refused with a message that names what differs.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import tempfile
import zipfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

FORMAT = "dgm_course checkpoint 1"


class CheckpointError(ValueError):
    """A checkpoint file that cannot be used: damaged, not one of ours, or from another run."""


_HYPER_PARAMETERS = ("lr", "betas", "eps", "weight_decay", "momentum", "dampening", "nesterov", "amsgrad", "alpha",
                     "maximize", "centered")


def _plain(value: Any) -> Any:
    """A JSON-like copy (tuples as lists, one-element tensors and NumPy numbers as numbers, anything else by name)
    so that fingerprints compare after a round trip through a file."""
    def default(o: Any) -> Any:
        if hasattr(o, "item") and getattr(o, "size", 1) in (1, ()) and callable(o.item):
            try:
                return o.item()
            except (TypeError, ValueError, RuntimeError):
                pass
        return getattr(o, "__qualname__", type(o).__name__)

    return json.loads(json.dumps(value, default=default))


def _simple(value: Any, depth: int = 0) -> Any:
    """``value`` if it is a plain constant (number, string, None) or a tuple/list of them; a tensor by its SHA-256;
    otherwise ``None`` (objects, functions, models: not part of a run's identity here)."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, Tensor):
        array = value.detach().cpu().contiguous()
        return "sha256:" + hashlib.sha256(array.view(torch.uint8).numpy().tobytes()
                                          if array.numel() else b"").hexdigest()
    if isinstance(value, (tuple, list)) and depth < 3:
        items = [_simple(v, depth + 1) for v in value]
        return items if all(i is not None or v is None for i, v in zip(items, value)) else None
    return None


def describe_callable(f: Callable[..., Any]) -> dict[str, Any]:
    """What a function is, as far as a run's identity goes: its name, and the plain values it closes over, takes by
    default or writes as constants (the name of a toy data set, a GAN's objective, a penalty's weight), through
    ``functools.partial`` and bound methods."""
    args = list(getattr(f, "args", ())) + sorted(getattr(f, "keywords", {}).items())
    f = getattr(f, "func", f)
    owner = getattr(f, "__self__", None)
    f = getattr(f, "__func__", f)
    values = [c.cell_contents for c in (getattr(f, "__closure__", None) or ()) if _has_contents(c)]
    values += (args + list(getattr(f, "__defaults__", None) or ())
               + sorted((getattr(f, "__kwdefaults__", None) or {}).items()))
    code = getattr(f, "__code__", None)
    values += [c for c in (code.co_consts if code else ())
               if isinstance(c, (str, int, float)) and not isinstance(c, bool)]
    return {"function": f"{getattr(f, '__module__', '?')}.{getattr(f, '__qualname__', type(f).__name__)}",
            "of": None if owner is None else type(owner).__qualname__,
            "values": [v for v in (_simple(v) for v in values) if v is not None]}


def _has_contents(cell: Any) -> bool:
    try:
        cell.cell_contents
    except ValueError:  # an empty cell (a variable not yet assigned)
        return False
    return True


def describe_data(data: Tensor | Callable[..., Tensor]) -> dict[str, Any]:
    """The identity of the training data: shape, dtype and SHA-256 of a tensor's bytes, or a sampler as
    :func:`describe_callable` sees it."""
    if isinstance(data, Tensor):
        return {"tensor": list(data.shape), "dtype": str(data.dtype), "sha256": _simple(data)}
    return {"sampler": describe_callable(data)}


def fingerprint(model: nn.Module, phases: Sequence[Any], *, steps: int, batch_size: int, seed: int,
                max_grad_norm: float | None, data: Tensor | Callable[..., Tensor]) -> dict[str, Any]:
    """Everything that defines a run of :func:`fit <dgm_course.training.fit>`, as plain data: the model's architecture,
    each phase's loss, optimiser, hyper-parameters (as set, before any schedule moves them) and schedule, and the
    steps, batch, seed, clipping and data."""
    return _plain({
        "model": type(model).__qualname__,
        "parameters": {name: list(p.shape) for name, p in model.state_dict().items()},
        "phases": [{
            "name": p.name,
            "loss": describe_callable(p.loss),
            "after_step": None if p.after_step is None else describe_callable(p.after_step),
            "repeats": p.repeats,
            "optimizer": type(p.optimizer).__qualname__,
            "hyper-parameters": [{k: group.get("initial_lr", group["lr"]) if k == "lr" else group[k]
                                  for k in _HYPER_PARAMETERS if k in group} for group in p.optimizer.param_groups],
            "schedule": None if p.scheduler is None else {
                "kind": type(p.scheduler).__qualname__,
                **{k: v for k, v in p.scheduler.state_dict().items() if k in ("T_max", "eta_min", "base_lrs")}},
        } for p in phases],
        "steps": steps,
        "batch_size": batch_size,
        "seed": seed,
        "max_grad_norm": max_grad_norm,
        "data": describe_data(data),
    })


def differences(saved: Any, current: Any, where: str = "") -> list[str]:
    """The places where two fingerprints differ, each as ``where: saved -> current``."""
    if isinstance(saved, dict) and isinstance(current, dict):
        out = []
        for key in sorted(set(saved) | set(current), key=str):
            out += differences(saved.get(key, "(absent)"), current.get(key, "(absent)"), f"{where}.{key}".lstrip("."))
        return out
    if (isinstance(saved, list) and isinstance(current, list) and len(saved) == len(current)
            and any(isinstance(v, (dict, list)) for v in saved + current)):  # a shape or a list of numbers is one value
        return [d for i, (a, b) in enumerate(zip(saved, current)) for d in differences(a, b, f"{where}[{i}]")]
    return [] if saved == current else [f"{where}: {saved!r} -> {current!r}"]


def save_atomically(state: dict[str, Any], path: Path) -> None:
    """Write ``state`` to ``path`` so that the file is always either the old checkpoint or the new one: a unique
    temporary file in the same folder, flushed to disk (fsync), then renamed over ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as f:
            torch.save({"format": FORMAT, **state}, f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes it private; a checkpoint is an ordinary file
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    try:  # make the rename itself durable
        folder = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(folder)
        finally:
            os.close(folder)
    except OSError:  # some file systems cannot fsync a folder; the rename is still atomic
        pass


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def load(path: Path) -> dict[str, Any]:
    """Read a checkpoint as data (``weights_only``: a checkpoint never runs code).

    Raises:
        CheckpointError: the file is empty, truncated, damaged or not a dgm_course checkpoint; the message names
            the file and what to do.
    """
    what_to_do = "delete it (the run starts again) or pass another checkpoint path"
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (EOFError, RuntimeError, OSError, pickle.UnpicklingError, zipfile.BadZipFile, ValueError) as err:
        raise CheckpointError(f"checkpoint {path} cannot be read ({type(err).__name__}: {str(err)[:200]}): it is "
                              f"empty, truncated or not a checkpoint; {what_to_do}") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a dgm_course checkpoint; {what_to_do}")
    return state


class Checkpoint:
    """The checkpoint file of one run: where it is, how often to write it, and the run's fingerprint."""

    def __init__(self, path: str | os.PathLike[str], every: int, run: dict[str, Any]) -> None:
        self.path, self.every, self.run = Path(path), every, run

    def resume(self) -> dict[str, Any] | None:
        """The saved state to continue from, or ``None`` when there is no checkpoint yet.

        Raises:
            CheckpointError: the file cannot be read, or it belongs to another run (the message lists what
                differs).
        """
        if not self.path.exists():
            return None
        state = load(self.path)
        changed = differences(state.get("run"), self.run)
        if changed:
            raise CheckpointError(
                f"checkpoint {self.path} belongs to another run; what differs (saved -> now): "
                + "; ".join(changed[:8]) + (f"; and {len(changed) - 8} more" if len(changed) > 8 else "")
                + ". Delete it to start this run afresh, or pass another checkpoint path.")
        return state

    def save(self, state: dict[str, Any]) -> None:
        """Write ``state`` with the run's fingerprint to the checkpoint file, atomically (:func:`save_atomically`)."""
        save_atomically({"run": self.run, **state}, self.path)
