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


def _plain(value: Any) -> Any:
    """A JSON-like copy (tuples as lists, objects by name) so that fingerprints compare after a round trip."""
    return json.loads(json.dumps(value, default=lambda o: getattr(o, "__qualname__", type(o).__name__)))


def describe_data(data: Tensor | Callable[..., Tensor]) -> dict[str, Any]:
    """The identity of the training data: shape, dtype and SHA-256 of a tensor's bytes, or a sampler's name
    and the simple values it closes over (e.g. the name of a toy data set)."""
    if isinstance(data, Tensor):
        array = data.detach().cpu().contiguous()
        digest = hashlib.sha256(array.view(torch.uint8).numpy().tobytes() if array.numel() else b"").hexdigest()
        return {"tensor": list(array.shape), "dtype": str(array.dtype), "sha256": digest}
    inner = getattr(data, "func", data)  # functools.partial
    captured = [c.cell_contents for c in (getattr(inner, "__closure__", None) or ())]
    captured += list(getattr(data, "args", ())) + sorted(getattr(data, "keywords", {}).items())
    simple = [repr(v) for v in captured if isinstance(v, (str, int, float, bool, tuple))]
    return {"sampler": f"{getattr(inner, '__module__', '?')}.{getattr(inner, '__qualname__', repr(inner))}",
            "values": simple}


def fingerprint(model: nn.Module, phases: Sequence[Any], *, steps: int, batch_size: int, seed: int,
                max_grad_norm: float | None, data: Tensor | Callable[..., Tensor]) -> dict[str, Any]:
    """Everything that defines a run of :func:`fit <dgm_course.training.fit>`, as plain data."""
    return _plain({
        "model": type(model).__qualname__,
        "parameters": {name: list(p.shape) for name, p in model.state_dict().items()},
        "phases": [{
            "name": p.name,
            "repeats": p.repeats,
            "optimizer": type(p.optimizer).__qualname__,
            "hyper-parameters": [{k: v for k, v in group.items() if k != "params"}
                                 for group in p.optimizer.param_groups],
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
        save_atomically({"run": self.run, **state}, self.path)
