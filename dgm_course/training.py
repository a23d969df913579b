r"""One training loop for every model of the course.

:func:`fit` minimises one loss, or several in an alternating schedule (a GAN's discriminator and
generator), by stochastic gradient steps. It knows a model only through its loss functions and its
``state_dict``. What it adds to a bare loop:

- **seeding**: the same ``seed`` gives the same run; the data order comes from a generator of its own;
- **device**: CUDA, then Apple's MPS, then the CPU, unless told otherwise;
- **progress**: a tqdm bar with the running loss (``DGM_PROGRESS=0`` turns it off);
- **checkpoints** (:mod:`.checkpoint`): every ``checkpoint_every`` rounds, on Ctrl-C and at the end, the whole
  state -- parameters, optimizers, schedulers, random-number generators, data order and history -- goes to one
  file, written atomically and only at the end of a round, so a checkpoint is always a state the uninterrupted
  run passed through. Calling :func:`fit` again with the same file resumes exactly where it stopped (bit for bit),
  returns at once when the run had finished, and refuses a file of another run, naming what differs;
- **a NaN guard**: a non-finite loss or gradient stops training with :class:`TrainingDiverged`, naming
  the step, the loss and the last checkpoint, instead of silently producing NaN parameters;
- **a history** of every loss and of the metrics of an optional ``evaluate`` function.
"""

from __future__ import annotations

import math
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Union

import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from . import budget
from ._checks import positive_int, same_dtype
from .checkpoint import Checkpoint, fingerprint

Data = Union[Tensor, Callable[[int, torch.Generator], Tensor]]


#: The data order's generator is seeded with ``budget.seed(seed) ^ DATA_STREAM``, never with the global generator's
#: seed: two Mersenne twisters seeded alike draw the same numbers, and a loss that draws its noise (a diffusion time,
#: a latent) from the global generator would see numbers that are functions of its batch.
DATA_STREAM = 0x5DEECE66D


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
        """The losses, evaluations and training time, for a checkpoint (the device is not saved)."""
        return {"losses": self.losses, "evaluations": self.evaluations, "seconds": self.seconds}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore the losses, evaluations and training time from a :meth:`state_dict`."""
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


def fit(
    model: nn.Module,
    loss: Callable[[Tensor], Tensor] | Sequence[Phase],
    data: Data,
    *,
    steps: int,
    batch_size: int,
    lr: float | None = None,
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
        model: the module that owns every trained parameter (moved to the device; checkpointed). Its
            initialisation happened before :func:`fit`: seed it there (``seed_everything`` or
            ``torch.manual_seed(budget.seed(k))`` before building the model).
        loss: a function ``batch -> scalar`` to minimise with Adam(``lr``) over all parameters of
            ``model``; or a sequence of :class:`Phase` run in order each round (alternating schedules),
            which bring their own optimizers and schedules.
        data: a tensor of examples (shuffled epochs) or a sampler ``f(n, generator) -> batch``.
        steps: number of rounds (with a single loss: optimizer steps).
        batch_size: examples per batch; every repeat of every phase draws a fresh batch.
        lr: learning rate of the Adam optimizer built for a single loss function (default 1e-3).
        cosine: with a single function, decay the learning rate to zero along a cosine over ``steps``.
        max_grad_norm: clip the gradient norm of each phase's parameters to this value (> 0).
        seed: seeds the global torch generator (noise inside losses) and, as an independent stream, the data
            order (:data:`DATA_STREAM`), through :func:`budget.seed` (so ``DGM_SEED`` moves both).
        device: where to train; by default :func:`choose_device`.
        checkpoint: a file to save to and resume from (:mod:`.checkpoint`). An existing file of the same run
            is resumed; one of another run is refused.
        checkpoint_every: rounds between checkpoints (default: about 10 per run).
        evaluate: called (without gradients, and without touching the random stream of training) every
            ``evaluate_every`` rounds and at the end; the dict it returns is stored, with the round (``step``)
            and the training time so far (``seconds``), in ``history.evaluations``. Time spent evaluating is
            not counted in ``seconds``.
        progress: show a progress bar (default: unless ``DGM_PROGRESS=0``).

    Raises:
        TrainingDiverged: a loss or a gradient is NaN or infinite (the step is not applied).
        ValueError: bad arguments (non-positive counts, data with NaN, ``lr`` or ``cosine`` given with phases).
        CheckpointError: a checkpoint that cannot be read or belongs to another run.
    """
    run = _Run(model, loss, data, steps=steps, batch_size=batch_size, lr=lr, cosine=cosine,
               max_grad_norm=max_grad_norm, seed=seed, device=device, checkpoint=checkpoint,
               checkpoint_every=checkpoint_every, evaluate=evaluate, evaluate_every=evaluate_every, progress=progress)
    with _bar(steps, run.start, run.show) as bar, _interrupts_wait_for_round_end(run.saver is not None) as interrupted:
        for step in range(run.start + 1, steps + 1):
            run.round(step)  # every phase takes its steps, then its schedule moves on
            run.tick(bar, step)
            if interrupted():  # Ctrl-C during the round: the round is complete, save it and stop
                run.stop(step)
            if run.evaluates_after(step):
                run.evaluate_between_rounds(step, interrupted)
            if run.saves_after(step):
                run.save(step)
    return run.finish()


class _Run:
    """The state of one call of :func:`fit`: the model and its phases, the batches, the history, the checkpoint and
    the clock (training time, evaluations excluded). The state is saved only at the end of a round."""

    def __init__(self, model: nn.Module, loss: Callable[[Tensor], Tensor] | Sequence[Phase], data: Data, *,
                 steps: int, batch_size: int, lr: float | None, cosine: bool, max_grad_norm: float | None, seed: int,
                 device: str | torch.device | None, checkpoint: str | os.PathLike[str] | None,
                 checkpoint_every: int | None, evaluate: Callable[[], dict[str, float]] | None,
                 evaluate_every: int | None, progress: bool | None) -> None:
        steps, batch_size = positive_int(steps, "steps"), positive_int(batch_size, "batch_size")
        every = None if checkpoint_every is None else positive_int(checkpoint_every, "checkpoint_every")
        self.evaluate_every = None if evaluate_every is None else positive_int(evaluate_every, "evaluate_every")
        if max_grad_norm is not None and not max_grad_norm > 0:
            raise ValueError(f"max_grad_norm must be positive (or None for no clipping); got {max_grad_norm!r}")
        _check_data(data, model, batch_size)
        self.model, self.steps, self.max_grad_norm, self.evaluate = model, steps, max_grad_norm, evaluate
        self.device = choose_device(device)
        model.to(self.device).train()
        self.phases = _phases(model, loss, steps, lr, cosine)
        self.batches = _Batches(data, batch_size, budget.seed(seed) ^ DATA_STREAM)
        self.history = History(losses={p.name: [] for p in self.phases}, device=str(self.device))
        self.saver = None if checkpoint is None else Checkpoint(checkpoint, every or max(1, steps // 10), fingerprint(
            model, self.phases, steps=steps, batch_size=batch_size, seed=budget.seed(seed),
            max_grad_norm=max_grad_norm, data=data))
        self.start = _resume(self.saver, model, self.phases, self.batches, self.history) if self.saver else 0
        if self.start == 0:
            torch.manual_seed(budget.seed(seed))
        self.show = progress if progress is not None else os.environ.get("DGM_PROGRESS", "1") != "0"
        self.t0 = time.perf_counter() - self.history.seconds
        self.last_saved = self.start if self.saver is not None and self.start > 0 else None
        if self.evaluates_after(self.start) and self.start > 0 \
                and not any(e["step"] == self.start for e in self.history.evaluations):
            self.t0 += self._evaluate_now(self.start)  # an interruption came between the round and its evaluation

    def round(self, step: int) -> None:
        """Round ``step``: each phase takes its ``repeats`` optimizer steps on fresh batches, then its schedule
        steps."""
        for p in self.phases:
            for _ in range(p.repeats):
                try:
                    value = _step(p, self.batches.next().to(self.device), self.max_grad_norm)
                except TrainingDiverged as err:
                    held = f" The last checkpoint ({self.saver.path}) holds step {self.last_saved}." \
                        if self.saver and self.last_saved else ""
                    raise TrainingDiverged(f"step {step}: {err}{held}") from None
            if p.scheduler is not None:
                p.scheduler.step()
            self.history.losses[p.name].append(value)

    def tick(self, bar: tqdm, step: int) -> None:
        """Move the progress bar (the running losses every 10 rounds) and the clock past round ``step``."""
        if self.show and (step % 10 == 0 or step == self.steps):
            bar.set_postfix({p.name: f"{self.history.losses[p.name][-1]:.4f}" for p in self.phases}, refresh=False)
        bar.update(1)
        self.history.seconds = time.perf_counter() - self.t0

    def stop(self, step: int) -> None:
        """Save the completed round ``step`` and stop with KeyboardInterrupt (Ctrl-C)."""
        self.save(step)
        raise KeyboardInterrupt(f"stopped after round {step}; the checkpoint {self.saver.path} holds it"
                                if self.saver else f"stopped after round {step}")

    def evaluates_after(self, step: int) -> bool:
        """Whether ``evaluate`` runs between round ``step`` and the next (the last round's comes in :meth:`finish`)."""
        every = self.evaluate_every
        return self.evaluate is not None and every is not None and step % every == 0 and step < self.steps

    def evaluate_between_rounds(self, step: int, interrupted: Callable[[], bool]) -> None:
        """Evaluate after round ``step``, off the clock; Ctrl-C while evaluating saves the round and stops."""
        try:
            self.t0 += self._evaluate_now(step)
        except KeyboardInterrupt:
            self.save(step)  # the round is complete; the resumed run evaluates it
            raise
        if interrupted():  # Ctrl-C while evaluating: stop here, not a round later
            self.stop(step)

    def saves_after(self, step: int) -> bool:
        """Whether a checkpoint is due after round ``step`` (the last round's is saved by :meth:`finish`)."""
        return self.saver is not None and step % self.saver.every == 0 and step != self.steps

    def save(self, step: int) -> None:
        """Write the whole state after round ``step`` to the checkpoint, if there is one."""
        if self.saver is None:
            return
        phases = self.phases
        self.saver.save({"step": step, "model": self.model.state_dict(),
                         "optimizers": [p.optimizer.state_dict() for p in phases],
                         "schedulers": [p.scheduler.state_dict() if p.scheduler else None for p in phases],
                         "data": self.batches.state_dict(), "torch_rng": torch.get_rng_state(),
                         "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
                         "history": self.history.state_dict()})
        self.last_saved = step

    def finish(self) -> History:
        """Stop the clock, keep the trained model, evaluate it, and hand the model back in evaluation mode."""
        self.history.seconds = time.perf_counter() - self.t0
        if self.start < self.steps:
            self.save(self.steps)  # the trained model is kept even if the final evaluation is interrupted
        if self.evaluate is not None and not any(e["step"] == self.steps for e in self.history.evaluations):
            self._evaluate_now(self.steps)
            self.save(self.steps)
        self.model.eval()
        return self.history

    def _evaluate_now(self, step: int) -> float:
        """Evaluate at the end of round ``step``; return the time it took, which is not training time."""
        t_eval = time.perf_counter()
        assert self.evaluate is not None
        self.history.evaluations.append(_evaluate(self.model, self.evaluate, step, self.history.seconds, self.device))
        return time.perf_counter() - t_eval


def _check_data(data: Data, model: nn.Module, batch_size: int) -> None:
    """Refuse, with what to do, a data tensor that training would misuse: 1-D, smaller than a batch, or of another
    dtype than the model's weights."""
    if not isinstance(data, Tensor):
        return
    if data.ndim < 2:
        raise ValueError(f"data must have shape (examples, ...); got shape {tuple(data.shape)} (a batch of numbers is "
                         "data[:, None])")
    if batch_size > len(data):
        raise ValueError(f"batch_size {batch_size} exceeds the {len(data)} examples of data; use at most {len(data)}")
    same_dtype(data, model, "data")


def _phases(model: nn.Module, loss: Callable[[Tensor], Tensor] | Sequence[Phase], steps: int, lr: float | None,
            cosine: bool) -> list[Phase]:
    """The phases of a run: one Adam phase for a single loss function, or the given ones, checked."""
    if callable(loss):
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-3 if lr is None else lr)
        scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=steps) if cosine else None
        return [Phase("loss", loss, optimizer, 1, scheduler)]
    phases = list(loss)
    if not phases or not all(isinstance(p, Phase) for p in phases):
        raise ValueError("loss must be a function batch -> scalar, or a non-empty sequence of Phase")
    if lr is not None or cosine:
        raise ValueError("lr and cosine apply to a single loss function; phases bring their own optimizers and "
                         "schedulers (set the learning rate and the schedule where the phases are built)")
    if len({p.name for p in phases}) != len(phases):
        raise ValueError(f"phase names must be distinct; got {[p.name for p in phases]}")
    for p in phases:
        positive_int(p.repeats, f"phase {p.name!r} repeats")
    return phases


def _resume(saver: Checkpoint, model: nn.Module, phases: list[Phase], batches: _Batches, history: History) -> int:
    """Load the saved state of this run into the live objects; return the round it holds (0: nothing saved)."""
    saved = saver.resume()
    if saved is None:
        return 0
    model.load_state_dict(saved["model"])  # moves the tensors to the model's device
    for p, o, s in zip(phases, saved["optimizers"], saved["schedulers"]):
        p.optimizer.load_state_dict(o)
        if p.scheduler is not None and s is not None:
            p.scheduler.load_state_dict(s)
    batches.load_state_dict(saved["data"])
    torch.set_rng_state(saved["torch_rng"].cpu())
    if saved["cuda_rng"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.cpu() for s in saved["cuda_rng"]])
    history.load_state_dict(saved["history"])
    return int(saved["step"])


@contextmanager
def _bar(steps: int, start: int, show: bool) -> Iterator[tqdm]:
    bar = tqdm(total=steps, initial=start, disable=not show, dynamic_ncols=True, mininterval=0.5)
    try:
        yield bar
    finally:
        bar.close()


@contextmanager
def _interrupts_wait_for_round_end(active: bool) -> Iterator[Callable[[], bool]]:
    """While a checkpointed run trains, Ctrl-C (SIGINT) lets the current round finish, so that the state saved is
    one the uninterrupted run passes through; a second Ctrl-C stops at once (nothing new is saved)."""
    previous = signal.getsignal(signal.SIGINT) if threading.current_thread() is threading.main_thread() else None
    if not active or previous in (None, signal.SIG_IGN):  # another thread, a handler set from C, Ctrl-C ignored
        yield lambda: False
        return
    pressed = [False]

    def handler(signum: int, frame: Any) -> None:
        if pressed[0]:
            signal.signal(signal.SIGINT, previous)
            raise KeyboardInterrupt
        pressed[0] = True

    signal.signal(signal.SIGINT, handler)
    try:
        yield lambda: pressed[0]
    finally:
        signal.signal(signal.SIGINT, previous)


def _step(p: Phase, batch: Tensor, max_grad_norm: float | None) -> float:
    """One optimizer step of phase ``p``; raises :class:`TrainingDiverged` on a NaN/inf loss or gradient, before
    the step is applied (so the parameters never take a non-finite value).

    The loss and the gradient norm come back to the host in one read: the price of deciding, before the step,
    whether to take it (on a GPU one synchronisation per step, as in PyTorch's own ``GradScaler``; on the CPU
    nothing to wait for). The history records that loss, so nothing else reads the device."""
    p.optimizer.zero_grad(set_to_none=True)
    value = p.loss(batch)
    if not isinstance(value, Tensor):
        raise ValueError(f"phase {p.name!r}: the loss must be a scalar tensor (to backpropagate through); got "
                         f"{type(value).__name__}")
    if value.ndim != 0:
        raise ValueError(f"phase {p.name!r}: the loss must be a scalar; got shape {tuple(value.shape)}")
    value.backward()
    params = [q for group in p.optimizer.param_groups for q in group["params"] if q.grad is not None]
    norm = torch.nn.utils.clip_grad_norm_(params, max_grad_norm if max_grad_norm is not None else math.inf)
    loss, grad_norm = torch.stack([value.detach(), norm.to(value)]).tolist()  # the one read (no float64: MPS has none)
    if not math.isfinite(loss):
        raise TrainingDiverged(
            f"the {p.name!r} loss is {loss}. Lower the learning rate, clip gradients (max_grad_norm) "
            "or check the data."
        )
    if not math.isfinite(grad_norm):
        raise TrainingDiverged(f"the {p.name!r} gradient is not finite (loss {loss}); lower the learning rate.")
    p.optimizer.step()
    if p.after_step is not None:
        with torch.no_grad():
            p.after_step()
    return loss


def _evaluate(model: nn.Module, evaluate: Callable[[], dict[str, float]], step: int, seconds: float,
              device: torch.device) -> dict[str, float]:
    """Run ``evaluate`` in evaluation mode, without gradients and on a fork of the random streams (so that
    evaluating, or not, leaves the training run the same)."""
    model.eval()
    with torch.no_grad(), torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        result = {"step": float(step), "seconds": seconds, **{k: float(v) for k, v in evaluate().items()}}
    model.train()
    return result
