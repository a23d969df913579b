r"""One training loop for every model of the course.

:func:`fit` minimises one loss, or several in an alternating schedule (a GAN's discriminator and
generator), by stochastic gradient steps. It knows a model only through its loss functions and its
``state_dict``. What it adds to a bare loop:

- **seeding**: the same ``seed`` gives the same run; the data order comes from a generator of its own;
- **device**: CUDA, then Apple's MPS, then the CPU, unless told otherwise;
- **progress**: a tqdm bar with the running loss (``DGM_PROGRESS=0`` turns it off);
- **checkpoints**: every ``checkpoint_every`` steps (and on Ctrl-C) the whole state -- parameters,
  optimizers, schedulers, random-number generators, data order and history -- goes to one file, written
  atomically. Calling :func:`fit` again with the same file resumes exactly where it stopped, and returns
  at once when the run had finished;
- **a NaN guard**: a non-finite loss or gradient stops training with :class:`TrainingDiverged`, naming
  the step, the loss and the last checkpoint, instead of silently producing NaN parameters;
- **a history** of every loss and of the metrics of an optional ``evaluate`` function.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Union

import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from . import budget
from ._checks import positive_int

Data = Union[Tensor, Callable[[int, torch.Generator], Tensor]]


class TrainingDiverged(FloatingPointError):
    """Raised when a loss or gradient becomes NaN or infinite."""


@dataclass
class Phase:
    """One player of an alternating schedule: a loss of a batch, the optimizer that lowers it, how many
    of its steps make one round (e.g. 5 critic steps per generator step in a WGAN), and what to do after
    each of its optimizer steps (``after_step``, e.g. clipping a critic's weights)."""

    name: str
    loss: Callable[[Tensor], Tensor]
    optimizer: torch.optim.Optimizer
    repeats: int = 1
    scheduler: torch.optim.lr_scheduler.LRScheduler | None = None
    after_step: Callable[[], None] | None = None


@dataclass
class History:
    """What :func:`fit` recorded: per-round losses of each phase, evaluations, training time (seconds,
    evaluations excluded) and device."""

    losses: dict[str, list[float]] = field(default_factory=dict)
    evaluations: list[dict[str, float]] = field(default_factory=list)
    seconds: float = 0.0
    device: str = "cpu"

    @property
    def loss(self) -> list[float]:
        """The losses of the single phase (or of the last phase when there are several)."""
        return list(self.losses.values())[-1]

    def state_dict(self) -> dict[str, Any]:
        return {"losses": self.losses, "evaluations": self.evaluations, "seconds": self.seconds}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.losses = {k: list(v) for k, v in state["losses"].items()}
        self.evaluations = list(state["evaluations"])
        self.seconds = float(state["seconds"])


def choose_device(device: str | torch.device | None = None) -> torch.device:
    """The device to train on: ``device`` when given, else CUDA, then MPS, then the CPU."""
    if device is not None:
        return torch.device(device)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


class _Batches:
    """Draws batches: shuffled epochs over a tensor, or fresh samples from a sampler ``f(n, generator)``."""

    def __init__(self, data: Data, batch_size: int, seed: int) -> None:
        self.data, self.batch_size = data, batch_size
        self.generator = torch.Generator().manual_seed(seed)
        self.order: Tensor | None = None
        self.position = 0
        if isinstance(data, Tensor):
            if data.ndim == 0 or len(data) == 0:
                raise ValueError(f"data must hold at least one example; got shape {tuple(data.shape)}")
            if data.is_floating_point() and not torch.isfinite(data).all():
                raise ValueError("data holds NaN or infinite values; clean them before training")
        elif not callable(data):
            raise ValueError(f"data must be a tensor or a sampler f(n, generator); got {type(data).__name__}")

    def next(self) -> Tensor:
        if not isinstance(self.data, Tensor):
            return self.data(self.batch_size, self.generator)
        n = len(self.data)
        if self.order is None or self.position + self.batch_size > n:
            self.order = torch.randperm(n, generator=self.generator)
            self.position = 0
        index = self.order[self.position : self.position + self.batch_size]
        self.position += len(index)
        return self.data[index]

    def state_dict(self) -> dict[str, Any]:
        return {"generator": self.generator.get_state(), "order": self.order, "position": self.position}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.generator.set_state(state["generator"])
        self.order, self.position = state["order"], state["position"]


def _save_atomically(obj: Any, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def fit(
    model: nn.Module,
    loss: Callable[[Tensor], Tensor] | Sequence[Phase],
    data: Data,
    *,
    steps: int,
    batch_size: int,
    lr: float = 1e-3,
    cosine: bool = False,
    max_grad_norm: float | None = None,
    seed: int = 0,
    device: str | torch.device | None = None,
    checkpoint: str | os.PathLike[str] | None = None,
    checkpoint_every: int | None = None,
    evaluate: Callable[[], dict[str, float]] | None = None,
    evaluate_every: int | None = None,
    progress: bool | None = None,
) -> History:
    r"""Train ``model`` for ``steps`` rounds and return the :class:`History`.

    Args:
        model: the module that owns every trained parameter (moved to the device; checkpointed).
        loss: a function ``batch -> scalar`` to minimise with Adam(``lr``) over all parameters of
            ``model``; or a sequence of :class:`Phase` run in order each round (alternating schedules).
        data: a tensor of examples (shuffled epochs) or a sampler ``f(n, generator) -> batch``.
        steps: number of rounds (with a single loss: optimizer steps).
        batch_size: examples per batch; every repeat of every phase draws a fresh batch.
        lr: learning rate of the Adam optimizer built when ``loss`` is a single function.
        cosine: with a single function, decay the learning rate to zero along a cosine over ``steps``.
        max_grad_norm: clip the gradient norm of each phase's parameters to this value.
        seed: seeds the global torch generator (noise inside losses) and the data order, through
            :func:`budget.seed` (so ``DGM_SEED`` moves it).
        device: where to train; by default :func:`choose_device`.
        checkpoint: a file to save to and resume from. An existing file is resumed.
        checkpoint_every: rounds between checkpoints (default: about 10 per run).
        evaluate: called (without gradients) every ``evaluate_every`` rounds and at the end; the dict
            it returns is stored, with the round (``step``) and the training time so far (``seconds``), in
            ``history.evaluations``. Time spent evaluating is not counted in ``seconds``.
        progress: show a progress bar (default: unless ``DGM_PROGRESS=0``).

    Raises:
        TrainingDiverged: a loss or a gradient is NaN or infinite.
        ValueError: bad arguments (non-positive counts, data with NaN, a checkpoint of another run).
    """
    steps = positive_int(steps, "steps")
    batch_size = positive_int(batch_size, "batch_size")
    dev = choose_device(device)
    model.to(dev).train()
    if callable(loss):
        optimizer = torch.optim.Adam(model.parameters(), lr=lr)
        scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=steps) if cosine else None
        phases: list[Phase] = [Phase("loss", loss, optimizer, 1, scheduler)]
    else:
        phases = list(loss)
        if not phases or not all(isinstance(p, Phase) for p in phases):
            raise ValueError("loss must be a function batch -> scalar, or a non-empty sequence of Phase")
        if len({p.name for p in phases}) != len(phases):
            raise ValueError(f"phase names must be distinct; got {[p.name for p in phases]}")
        for p in phases:
            positive_int(p.repeats, f"phase {p.name!r} repeats")
    batches = _Batches(data, batch_size, budget.seed(seed))
    history = History(losses={p.name: [] for p in phases}, device=str(dev))
    path = Path(checkpoint) if checkpoint is not None else None
    every = checkpoint_every or max(1, steps // 10)
    fingerprint = {"steps": steps, "batch_size": batch_size, "phases": [p.name for p in phases]}
    start = 0

    def state() -> dict[str, Any]:
        return {
            "fingerprint": fingerprint,
            "step": step,
            "model": model.state_dict(),
            "optimizers": [p.optimizer.state_dict() for p in phases],
            "schedulers": [p.scheduler.state_dict() if p.scheduler else None for p in phases],
            "data": batches.state_dict(),
            "torch_rng": torch.get_rng_state(),
            "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
            "history": history.state_dict(),
        }

    if path is not None and path.exists():
        saved = torch.load(path, map_location="cpu", weights_only=False)  # load_state_dict moves to dev
        if saved["fingerprint"] != fingerprint:
            raise ValueError(
                f"checkpoint {path} belongs to another run ({saved['fingerprint']}, this run: {fingerprint}); "
                "delete it or pass another checkpoint path"
            )
        model.load_state_dict(saved["model"])
        for p, o, s in zip(phases, saved["optimizers"], saved["schedulers"]):
            p.optimizer.load_state_dict(o)
            if p.scheduler is not None and s is not None:
                p.scheduler.load_state_dict(s)
        batches.load_state_dict(saved["data"])
        torch.set_rng_state(saved["torch_rng"].cpu())
        if saved["cuda_rng"] is not None and torch.cuda.is_available():
            torch.cuda.set_rng_state_all([s.cpu() for s in saved["cuda_rng"]])
        history.load_state_dict(saved["history"])
        start = saved["step"]
    else:
        torch.manual_seed(budget.seed(seed))

    show = progress if progress is not None else os.environ.get("DGM_PROGRESS", "1") != "0"
    bar = tqdm(total=steps, initial=start, disable=not show, dynamic_ncols=True, mininterval=0.5)
    t0 = time.perf_counter() - history.seconds
    last_saved = start if path is not None and start > 0 else None
    step = completed = start
    try:
        for step in range(start + 1, steps + 1):
            for p in phases:
                for _ in range(p.repeats):
                    try:
                        value = _step(p, batches.next().to(dev), max_grad_norm)
                    except TrainingDiverged as err:
                        saved = f" The last checkpoint ({path}) holds step {last_saved}." if last_saved else ""
                        raise TrainingDiverged(f"step {step}: {err}{saved}") from None
                if p.scheduler is not None:
                    p.scheduler.step()
                history.losses[p.name].append(value)
            completed = step
            if show and (step % 10 == 0 or step == steps):
                bar.set_postfix({p.name: f"{history.losses[p.name][-1]:.4f}" for p in phases}, refresh=False)
            bar.update(1)
            if evaluate is not None and evaluate_every and step % evaluate_every == 0 and step != steps:
                t_eval = time.perf_counter()
                history.evaluations.append(_evaluate(model, evaluate, step, t_eval - t0))
                t0 += time.perf_counter() - t_eval  # the training clock stops while evaluating
            if path is not None and step % every == 0 and step != steps:
                history.seconds = time.perf_counter() - t0
                _save_atomically(state(), path)
                last_saved = step
    except KeyboardInterrupt:
        if path is not None:  # keep the work: save the state as it stands, counting finished rounds only
            step = completed
            history.seconds = time.perf_counter() - t0
            for name in history.losses:
                del history.losses[name][step:]
            _save_atomically(state(), path)
        raise
    finally:
        bar.close()
    history.seconds = time.perf_counter() - t0
    if evaluate is not None and start < steps:
        history.evaluations.append(_evaluate(model, evaluate, steps, history.seconds))
    model.eval()
    if path is not None:
        step = steps
        _save_atomically(state(), path)
    return history


def _step(p: Phase, batch: Tensor, max_grad_norm: float | None) -> float:
    """One optimizer step of phase ``p``; raises :class:`TrainingDiverged` on a NaN/inf loss or gradient."""
    p.optimizer.zero_grad(set_to_none=True)
    value = p.loss(batch)
    if value.ndim != 0:
        raise ValueError(f"phase {p.name!r}: the loss must be a scalar; got shape {tuple(value.shape)}")
    loss = float(value.detach())
    if not math.isfinite(loss):
        raise TrainingDiverged(
            f"the {p.name!r} loss is {loss}. Lower the learning rate, clip gradients (max_grad_norm) "
            "or check the data."
        )
    value.backward()
    params = [q for group in p.optimizer.param_groups for q in group["params"] if q.grad is not None]
    norm = torch.nn.utils.clip_grad_norm_(params, max_grad_norm if max_grad_norm is not None else math.inf)
    if not torch.isfinite(norm):
        raise TrainingDiverged(f"the {p.name!r} gradient is not finite (loss {loss}); lower the learning rate.")
    p.optimizer.step()
    if p.after_step is not None:
        with torch.no_grad():
            p.after_step()
    return loss


def _evaluate(model: nn.Module, evaluate: Callable[[], dict[str, float]], step: int, seconds: float) -> dict[str, float]:
    model.eval()
    with torch.no_grad():
        result = {"step": float(step), "seconds": seconds, **{k: float(v) for k, v in evaluate().items()}}
    model.train()
    return result
