import pytest
import torch
from torch import nn

from dgm_course.data import toy2d
from dgm_course.training import History, Phase, TrainingDiverged, choose_device, fit


def _model():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(2, 16), nn.Tanh(), nn.Linear(16, 1)).double()


def _noisy_loss(model):
    # noise drawn from the global generator inside the loss, as a VAE's reparameterization does
    return lambda b: (model(b + 0.1 * torch.randn_like(b)) - b[:, :1]).pow(2).mean()


DATA = torch.randn(300, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)


def test_loss_goes_down_and_history_is_recorded():
    model = _model()
    h = fit(model, _noisy_loss(model), DATA, steps=150, batch_size=32, lr=1e-2, progress=False)
    assert isinstance(h, History) and len(h.loss) == 150 and h.device == "cpu"
    assert sum(h.loss[-20:]) / 20 < 0.5 * sum(h.loss[:20]) / 20
    assert not model.training


def test_same_seed_same_run_other_seed_other_run():
    runs = []
    for seed in (0, 0, 1):
        model = _model()
        runs.append(fit(model, _noisy_loss(model), DATA, steps=20, batch_size=16, seed=seed, progress=False).loss)
    assert runs[0] == runs[1] and runs[0] != runs[2]


def test_resume_is_exact(tmp_path):
    """Training 40 steps in one go equals training to a checkpoint at step 20 and resuming from it."""
    model = _model()
    full = fit(model, _noisy_loss(model), DATA, steps=40, batch_size=32, cosine=True, progress=False)
    reference = [p.detach().clone() for p in model.parameters()]

    path = tmp_path / "run.pt"
    # a run interrupted (Ctrl-C) after 20 of 40 steps, emulated by the evaluate hook
    model = _model()

    def stop_at_20():
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        fit(model, _noisy_loss(model), DATA, steps=40, batch_size=32, cosine=True, progress=False,
            checkpoint=path, checkpoint_every=20, evaluate=stop_at_20, evaluate_every=20)
    saved = torch.load(path, weights_only=False)
    assert saved["step"] == 20 and len(saved["history"]["losses"]["loss"]) == 20

    model = _model()  # a fresh process: new model, same code
    resumed = fit(model, _noisy_loss(model), DATA, steps=40, batch_size=32, cosine=True, progress=False,
                  checkpoint=path)
    assert resumed.loss == full.loss
    for p, q in zip(model.parameters(), reference):
        assert torch.equal(p, q)

    # a finished run returns at once with its history, and does not train again
    again = fit(model, _noisy_loss(model), DATA, steps=40, batch_size=32, cosine=True, progress=False, checkpoint=path)
    assert again.loss == full.loss
    for p, q in zip(model.parameters(), reference):
        assert torch.equal(p, q)


def test_checkpoint_of_another_run_is_refused(tmp_path):
    model = _model()
    fit(model, _noisy_loss(model), DATA, steps=5, batch_size=8, progress=False, checkpoint=tmp_path / "c.pt")
    with pytest.raises(ValueError, match="belongs to another run"):
        fit(model, _noisy_loss(model), DATA, steps=6, batch_size=8, progress=False, checkpoint=tmp_path / "c.pt")


def test_nan_guard_names_step_loss_and_checkpoint(tmp_path):
    model = _model()
    calls = {"n": 0}

    def loss(b):
        calls["n"] += 1
        value = model(b).pow(2).mean()
        return value * float("nan") if calls["n"] == 7 else value

    with pytest.raises(TrainingDiverged, match=r"step 7: the 'loss' loss is nan.*holds step 5"):
        fit(model, loss, DATA, steps=10, batch_size=8, progress=False, checkpoint=tmp_path / "c.pt", checkpoint_every=5)
    assert all(torch.isfinite(p).all() for p in model.parameters())


def test_infinite_gradient_is_caught():
    model = _model()

    def loss(b):
        return model(b).abs().sqrt().sum() * 0 + (model(b) * 0).sqrt().sum()  # d sqrt(0) = inf

    with pytest.raises(TrainingDiverged, match="gradient is not finite"):
        fit(model, loss, DATA, steps=3, batch_size=8, progress=False)


def test_alternating_phases_and_evaluations():
    a, b = nn.Parameter(torch.tensor(3.0)), nn.Parameter(torch.tensor(-2.0))
    model = nn.ParameterList([a, b])
    counts = {"a": 0, "b": 0}

    def loss_a(batch):
        counts["a"] += 1
        return (a - 1) ** 2

    def loss_b(batch):
        counts["b"] += 1
        return (b + 1) ** 2

    phases = [
        Phase("a", loss_a, torch.optim.SGD([a], lr=0.1), repeats=3),
        Phase("b", loss_b, torch.optim.SGD([b], lr=0.1)),
    ]
    h = fit(model, phases, lambda n, g: torch.zeros(n, 1), steps=50, batch_size=4, progress=False,
            evaluate=lambda: {"a": a.item()}, evaluate_every=10)
    assert counts == {"a": 150, "b": 50}
    assert set(h.losses) == {"a", "b"} and len(h.losses["a"]) == 50
    assert a.item() == pytest.approx(1.0, abs=1e-6) and b.item() == pytest.approx(-1.0, abs=1e-3)
    assert [e["step"] for e in h.evaluations] == [10, 20, 30, 40, 50]


def test_the_training_clock_stops_while_evaluating():
    import time

    model = _model()
    start = time.perf_counter()
    h = fit(model, lambda b: model(b).pow(2).mean(), DATA, steps=20, batch_size=16, progress=False,
            evaluate=lambda: time.sleep(0.1) or {}, evaluate_every=5)
    elapsed = time.perf_counter() - start
    seconds = [e["seconds"] for e in h.evaluations]
    assert [e["step"] for e in h.evaluations] == [5, 10, 15, 20]
    assert seconds == sorted(seconds) and seconds[-1] == h.seconds
    assert h.seconds < elapsed - 0.35  # four evaluations of 0.1 s are not training time


def test_tensor_data_is_shuffled_in_epochs():
    seen = []
    model = nn.Linear(1, 1)

    def loss(batch):
        seen.append(batch[:, 0].clone())
        return model(batch).sum()

    data = torch.arange(12.0).unsqueeze(1)
    fit(model, loss, data, steps=3, batch_size=4, progress=False)
    assert sorted(torch.cat(seen).tolist()) == list(range(12))  # one epoch: every example once


def test_bad_arguments():
    model = _model()
    with pytest.raises(ValueError, match="steps must be a positive integer"):
        fit(model, _noisy_loss(model), DATA, steps=0, batch_size=4)
    with pytest.raises(ValueError, match="NaN"):
        fit(model, _noisy_loss(model), torch.tensor([[float("nan"), 1.0]], dtype=torch.float64), steps=1, batch_size=1)
    with pytest.raises(ValueError, match="must be a scalar"):
        fit(model, lambda b: model(b), DATA, steps=1, batch_size=4, progress=False)


def test_progress_bar_shows_the_loss(capsys):
    model = nn.Linear(2, 1)
    fit(model, lambda b: model(b).pow(2).mean(), lambda n, g: toy2d.sample("moons", n, g), steps=20, batch_size=8,
        progress=True)
    err = capsys.readouterr().err
    assert "20/20" in err and "loss=" in err


def test_choose_device(monkeypatch):
    """CUDA first, then MPS, then the CPU; an explicit device always wins (each case forced, whatever this machine
    has)."""
    for cuda, mps, expected in [(True, True, "cuda"), (False, True, "mps"), (False, False, "cpu")]:
        monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
        monkeypatch.setattr(torch.backends.mps, "is_available", lambda: mps)
        assert choose_device().type == expected
        assert choose_device("cpu") == torch.device("cpu") and choose_device("meta").type == "meta"


# --- checkpoints: never lose or mix up work ----------------------------------------------------------------------

@pytest.fixture
def ctrl_c_enabled():
    """Ctrl-C raises KeyboardInterrupt, as in a terminal, even where the tests were started with SIGINT ignored (a
    background job of a non-interactive shell inherits SIG_IGN, and fit rightly leaves an ignored Ctrl-C alone)."""
    import signal

    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


def _two_phase_run(*, stop_in_round=None, signal_in_round=None, kill_in_round=None):
    """A GAN-like run of two phases on a toy sampler: returns (model, phases), with an optional Ctrl-C (SIGINT),
    KeyboardInterrupt or SIGKILL from inside phase "b" of the given round. (The traps live in a dict, which is not
    part of the run's fingerprint: the interrupted and the resumed run are the same run.)"""
    import signal

    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(2, 8), nn.Tanh(), nn.Linear(8, 1)).double()
    a, b = model[0], model[2]
    calls = {"b": 0}
    traps = {"stop": stop_in_round, "sigint": signal_in_round, "kill": kill_in_round}

    def loss_a(x):
        return (model(x) - 1).pow(2).mean() + 0.01 * torch.randn(()).double()

    def loss_b(x):
        calls["b"] += 1
        if calls["b"] == traps["stop"]:
            raise KeyboardInterrupt  # e.g. an interrupt where no signal handler could be installed
        if calls["b"] == traps["sigint"]:
            signal.raise_signal(signal.SIGINT)  # Ctrl-C in the middle of the round
        if calls["b"] == traps["kill"]:
            signal.raise_signal(signal.SIGKILL)  # the process dies here, mid-round: no handler runs
        return model(x).pow(2).mean()

    phases = [Phase("a", loss_a, torch.optim.Adam(a.parameters(), lr=1e-2), repeats=2),
              Phase("b", loss_b, torch.optim.SGD(b.parameters(), lr=1e-2))]
    return model, phases


def toy_sampler(n, g):
    return torch.randn(n, 2, generator=g, dtype=torch.float64)


def _reference(steps=12):
    model, phases = _two_phase_run()
    history = fit(model, phases, toy_sampler, steps=steps, batch_size=16, progress=False)
    return history, [p.detach().clone() for p in model.parameters()]


def _same(history, model, reference):
    ref_history, ref_params = reference
    assert history.losses == ref_history.losses
    assert all(torch.equal(p, q) for p, q in zip(model.parameters(), ref_params))


def test_ctrl_c_inside_a_round_saves_the_end_of_that_round_and_resumes_exactly(tmp_path, ctrl_c_enabled):
    reference = _reference()
    path = tmp_path / "run.pt"
    model, phases = _two_phase_run(signal_in_round=7)
    with pytest.raises(KeyboardInterrupt, match="after round 7"):
        fit(model, phases, toy_sampler, steps=12, batch_size=16, progress=False, checkpoint=path, checkpoint_every=5)
    from dgm_course.checkpoint import load

    assert load(path)["step"] == 7  # not 6 with half of round 7 applied: the round was finished first
    model, phases = _two_phase_run()
    _same(fit(model, phases, toy_sampler, steps=12, batch_size=16, progress=False, checkpoint=path), model, reference)


def test_an_interrupt_inside_a_step_keeps_the_last_consistent_checkpoint(tmp_path):
    reference = _reference()
    path = tmp_path / "run.pt"
    model, phases = _two_phase_run(stop_in_round=8)  # phase "a" of round 8 has already been applied
    with pytest.raises(KeyboardInterrupt):
        fit(model, phases, toy_sampler, steps=12, batch_size=16, progress=False, checkpoint=path, checkpoint_every=5)
    from dgm_course.checkpoint import load

    assert load(path)["step"] == 5  # the half-applied round is not saved
    model, phases = _two_phase_run()
    _same(fit(model, phases, toy_sampler, steps=12, batch_size=16, progress=False, checkpoint=path), model, reference)


def test_a_killed_process_leaves_a_checkpoint_that_resumes_bit_for_bit(tmp_path):
    """SIGKILL mid-run (no handler can run): the last checkpoint is intact and the resumed run is the
    uninterrupted one, bit for bit."""
    import os
    import signal
    import subprocess
    import sys
    from pathlib import Path

    from dgm_course.checkpoint import load

    reference = _reference(steps=40)
    path = tmp_path / "run.pt"
    script = (f"import sys; sys.path.insert(0, {str(Path(__file__).parent)!r}); import test_training as t\n"
              "model, phases = t._two_phase_run(kill_in_round=23)\n"
              f"t.fit(model, phases, t.toy_sampler, steps=40, batch_size=16, progress=False, checkpoint={str(path)!r}, "
              "checkpoint_every=3)\n")
    child = subprocess.run([sys.executable, "-c", script], env={**os.environ, "OMP_NUM_THREADS": "1"}, timeout=120,
                           check=False)
    assert child.returncode == -signal.SIGKILL
    saved = load(path)  # intact: written to a temporary file, flushed, then renamed
    assert saved["step"] == 21  # the last round saved before the kill in round 23
    assert [p.name for p in tmp_path.iterdir()] == ["run.pt"]  # no half-written file left behind
    model, phases = _two_phase_run()
    _same(fit(model, phases, toy_sampler, steps=40, batch_size=16, progress=False, checkpoint=path), model, reference)


def test_ctrl_c_during_the_final_evaluation_keeps_the_trained_model(tmp_path):
    reference = _reference()
    path = tmp_path / "run.pt"
    calls = {"n": 0}

    def evaluate():
        calls["n"] += 1
        raise KeyboardInterrupt

    model, phases = _two_phase_run()
    with pytest.raises(KeyboardInterrupt):
        fit(model, phases, toy_sampler, steps=12, batch_size=16, progress=False, checkpoint=path, evaluate=evaluate)
    from dgm_course.checkpoint import load

    assert load(path)["step"] == 12 and calls["n"] == 1
    model, phases = _two_phase_run()
    history = fit(model, phases, toy_sampler, steps=12, batch_size=16, progress=False, checkpoint=path,
                  evaluate=lambda: {"done": 1.0})
    _same(history, model, reference)  # nothing was trained again, and the evaluation ran
    assert [e["step"] for e in history.evaluations] == [12]


def test_resume_refuses_another_run_and_names_what_differs(tmp_path):
    path = tmp_path / "run.pt"
    model = _model()
    fit(model, _noisy_loss(model), DATA, steps=5, batch_size=8, lr=1e-2, progress=False, checkpoint=path)
    for changes, named in [(dict(lr=0.5), "lr: 0.01 -> 0.5"), (dict(seed=3), "seed"), (dict(cosine=True), "schedule"),
                           (dict(data=DATA[:200]), "data.tensor"), (dict(batch_size=4), "batch_size")]:
        model = _model()
        args = dict(data=DATA, steps=5, batch_size=8, lr=1e-2, progress=False, checkpoint=path) | changes
        data = args.pop("data")
        with pytest.raises(ValueError, match="belongs to another run") as err:
            fit(model, _noisy_loss(model), data, **args)
        assert named in str(err.value) and "Delete it" in str(err.value)
    wider = nn.Sequential(nn.Linear(2, 32), nn.Tanh(), nn.Linear(32, 1)).double()
    with pytest.raises(ValueError, match=r"parameters\.0\.weight: \[16, 2\] -> \[32, 2\]"):
        fit(wider, _noisy_loss(wider), DATA, steps=5, batch_size=8, lr=1e-2, progress=False, checkpoint=path)
    other_data = tmp_path / "other.pt"  # samplers: another data set of the same sampler is another run
    fit(model, _noisy_loss(model), lambda n, g: toy2d.sample("moons", n, g).double(), steps=3, batch_size=8,
        progress=False, checkpoint=other_data)

    def sampler(n, g, name="moons"):
        return toy2d.sample(name, n, g).double()

    def make(name):  # the same function, the same name, another data set
        def sampler(n, g):
            return toy2d.sample(name, n, g).double()
        return sampler

    again = tmp_path / "again.pt"
    fit(model, _noisy_loss(model), make("moons"), steps=3, batch_size=8, progress=False, checkpoint=again)
    with pytest.raises(ValueError, match="data.sampler.values.*'moons'.*'8gaussians'"):
        fit(model, _noisy_loss(model), make("8gaussians"), steps=3, batch_size=8, progress=False, checkpoint=again)
    with pytest.raises(ValueError, match="data.sampler"):
        fit(model, _noisy_loss(model), sampler, steps=3, batch_size=8, progress=False, checkpoint=other_data)


@pytest.mark.parametrize("content", [b"", b"not a checkpoint at all", "truncated"])
def test_a_damaged_checkpoint_is_refused_with_what_to_do(tmp_path, content):
    from dgm_course.checkpoint import CheckpointError

    path = tmp_path / "run.pt"
    model = _model()
    fit(model, _noisy_loss(model), DATA, steps=3, batch_size=8, progress=False, checkpoint=path)
    whole = path.read_bytes()
    path.write_bytes(whole[: len(whole) // 2] if content == "truncated" else content)
    with pytest.raises(CheckpointError, match=rf"checkpoint {path} cannot be read .*delete it"):
        fit(model, _noisy_loss(model), DATA, steps=3, batch_size=8, progress=False, checkpoint=path)
    torch.save({"step": 3}, path)  # a file of someone else's
    with pytest.raises(CheckpointError, match="is not a dgm_course checkpoint"):
        fit(model, _noisy_loss(model), DATA, steps=3, batch_size=8, progress=False, checkpoint=path)


class _RunsCode:
    """A pickled object that, loaded without ``weights_only``, would run code: it touches a file."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        import pathlib

        return pathlib.Path.touch, (pathlib.Path(self.marker),)


def test_a_checkpoint_is_read_as_data_and_never_runs_code(tmp_path):
    from dgm_course.checkpoint import FORMAT, CheckpointError, load

    path, marker = tmp_path / "run.pt", tmp_path / "code-ran"
    torch.save({"format": FORMAT, "step": 1, "payload": _RunsCode(marker)}, path)
    with pytest.raises(CheckpointError, match=rf"checkpoint {path} cannot be read .*UnpicklingError"):
        load(path)
    assert not marker.exists()  # weights_only: the payload was refused, not run


def test_a_checkpoint_is_written_to_its_own_temporary_file_flushed_then_renamed(tmp_path, monkeypatch):
    import os

    from dgm_course import checkpoint

    events, sources = [], []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd):
        events.append("fsync")
        real_fsync(fd)

    def replace(src, dst):
        events.append("replace")
        sources.append(src)
        assert os.path.dirname(src) == str(tmp_path) and os.path.basename(src).startswith(".run.pt.")
        assert os.path.getsize(src) > 0  # written in full before the rename
        real_replace(src, dst)

    monkeypatch.setattr(checkpoint.os, "fsync", fsync)
    monkeypatch.setattr(checkpoint.os, "replace", replace)
    checkpoint.save_atomically({"step": 1}, tmp_path / "run.pt")
    checkpoint.save_atomically({"step": 2}, tmp_path / "run.pt")
    assert events[:2] == ["fsync", "replace"] and events.count("replace") == 2  # the file's fsync, then the rename
    assert sources[0] != sources[1]  # a unique name for each write: two writers never share one
    assert checkpoint.load(tmp_path / "run.pt")["step"] == 2 and sorted(os.listdir(tmp_path)) == ["run.pt"]


def test_arguments_that_would_be_ignored_or_wrong_are_refused():
    import numpy as np

    model, phases = _two_phase_run()
    for bad in (dict(lr=0.1), dict(cosine=True)):
        with pytest.raises(ValueError, match="lr and cosine apply to a single loss function"):
            fit(model, phases, toy_sampler, steps=2, batch_size=4, progress=False, **bad)
    for norm in (0, -1.0):
        with pytest.raises(ValueError, match=f"max_grad_norm must be positive.*got {norm}"):
            fit(model, phases, toy_sampler, steps=2, batch_size=4, progress=False, max_grad_norm=norm)
    with pytest.raises(ValueError, match="the loss must be a scalar tensor .* got float"):
        fit(model, lambda x: 1.0, toy_sampler, steps=2, batch_size=4, progress=False)
    history = fit(model, phases, toy_sampler, steps=np.int64(3), batch_size=np.int32(4), progress=False)
    assert len(history.losses["a"]) == 3  # NumPy integers are whole numbers too


def test_data_that_training_would_misuse_is_refused():
    model = _model()  # float64 weights
    for data, message in [(DATA.float(), "data is torch.float32 but the model's weights are torch.float64"),
                          (DATA.long(), "data is torch.int64"),
                          (DATA[:, 0], r"shape \(examples, ...\); got shape \(300,\)"),
                          (DATA[:5], "batch_size 8 exceeds the 5 examples")]:
        with pytest.raises(ValueError, match=message):
            fit(model, _noisy_loss(model), data, steps=1, batch_size=8, progress=False)


def test_two_gan_objectives_are_two_runs(tmp_path):
    """The fingerprint sees the losses: the minimax and the non-saturating GAN of one recipe are not one run."""
    from dgm_course.gan import TEXTBOOK, train_2d

    path = tmp_path / "gan.pt"
    train_2d(TEXTBOOK["minimax"].but(steps=2, hidden=8, batch=16), "8gaussians", checkpoint=path, progress=False)
    with pytest.raises(ValueError, match="belongs to another run.*minimax.*nonsaturating|belongs to another run.*loss"):
        train_2d(TEXTBOOK["nonsaturating"].but(steps=2, hidden=8, batch=16), "8gaussians", checkpoint=path,
                 progress=False)


def test_a_resumed_run_evaluates_the_round_it_was_stopped_at(tmp_path, ctrl_c_enabled):
    """Ctrl-C in round 6 of a run evaluated every 3 rounds: the resumed run's evaluations are the uninterrupted
    one's."""
    counter = {"n": 0}

    def evaluate():
        counter["n"] += 1
        return {"a": float(next(iter(model.parameters())).sum())}

    model, phases = _two_phase_run()
    full = fit(model, phases, toy_sampler, steps=12, batch_size=16, progress=False, evaluate=evaluate, evaluate_every=3)
    path = tmp_path / "run.pt"
    model, phases = _two_phase_run(signal_in_round=6)
    with pytest.raises(KeyboardInterrupt):
        fit(model, phases, toy_sampler, steps=12, batch_size=16, progress=False, checkpoint=path, evaluate=evaluate,
            evaluate_every=3)
    model, phases = _two_phase_run()
    resumed = fit(model, phases, toy_sampler, steps=12, batch_size=16, progress=False, checkpoint=path,
                  evaluate=evaluate, evaluate_every=3)
    strip = lambda h: [{k: v for k, v in e.items() if k != "seconds"} for e in h.evaluations]  # noqa: E731
    assert strip(resumed) == strip(full) and resumed.losses == full.losses


def test_the_data_stream_is_not_the_noise_stream():
    """A loss's noise (drawn from the global generator that fit seeds) must not repeat the numbers the data sampler
    draws: with both streams seeded alike, a diffusion model learnt the noise from its batch (its training loss fell
    while its held-out loss rose)."""
    model = nn.Linear(1, 1)
    data_draws, noise_draws = [], []

    def sampler(n, generator):
        data_draws.append(torch.rand(n, generator=generator))
        return data_draws[-1][:, None]

    def loss(batch):
        noise_draws.append(torch.rand(len(batch)))
        return model(batch).pow(2).mean()

    fit(model, loss, sampler, steps=3, batch_size=8, seed=5, progress=False)
    data, noise = torch.cat(data_draws), torch.cat(noise_draws)
    assert not torch.isclose(data, noise).any()
    assert abs(float(torch.corrcoef(torch.stack([data, noise]))[0, 1])) < 0.8
