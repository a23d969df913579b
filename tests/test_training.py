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
    resumed = fit(model, _noisy_loss(model), DATA, steps=40, batch_size=32, cosine=True, progress=False, checkpoint=path)
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
        fit(model, _noisy_loss(model), torch.tensor([[float("nan"), 1.0]]), steps=1, batch_size=1)
    with pytest.raises(ValueError, match="must be a scalar"):
        fit(model, lambda b: model(b), DATA, steps=1, batch_size=4, progress=False)


def test_progress_bar_shows_the_loss(capsys):
    model = nn.Linear(2, 1)
    fit(model, lambda b: model(b).pow(2).mean(), lambda n, g: toy2d.sample("moons", n, g), steps=20, batch_size=8, progress=True)
    err = capsys.readouterr().err
    assert "20/20" in err and "loss=" in err


def test_choose_device():
    assert choose_device("cpu") == torch.device("cpu")
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    if not torch.cuda.is_available() and torch.backends.mps.is_available():
        expected = "mps"
    assert choose_device().type == expected
