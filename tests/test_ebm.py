"""Energy-based models against what must hold: the grid's log-partition of a known energy, the contrastive-divergence
gradient equal to the likelihood's, Langevin chains on -grad E reaching the model's law, and a short training run."""

import math

import pytest
import torch
from torch import nn

from dgm_course import budget
from dgm_course.data import toy2d
from dgm_course.ebm import (
    EnergyMLP,
    ReplayBuffer,
    cd_loss,
    held_out_2d,
    log_partition,
    log_prob,
    mean_chain_steps,
    negative_samples,
    train_cd,
)
from dgm_course.langevin import langevin
from dgm_course.training import fit


class Quadratic(nn.Module):
    """E(x) = |x - m|^2 / (2 s^2): the energy of N(m, s^2 I), with Z = 2 pi s^2 in 2-D."""

    def __init__(self, m=(0.5, -1.0), s=0.7):
        super().__init__()
        self.m = nn.Parameter(torch.tensor(m, dtype=torch.float64))
        self.log_s = nn.Parameter(torch.tensor(math.log(s), dtype=torch.float64))

    def forward(self, x):
        return ((x - self.m) ** 2).sum(1) / (2 * torch.exp(2 * self.log_s))

    def score(self, x):
        return -(x - self.m.detach()) / torch.exp(2 * self.log_s.detach())


def test_log_partition_of_a_gaussian_energy_and_its_normalised_density():
    energy = Quadratic()
    log_z = log_partition(energy, bound=8.0, n=800)
    assert log_z == pytest.approx(math.log(2 * math.pi * 0.7**2), abs=1e-6)
    x = torch.randn(10, 2, dtype=torch.float64)
    truth = torch.distributions.Normal(energy.m.detach(), 0.7).log_prob(x).sum(1)
    torch.testing.assert_close(log_prob(energy, x, log_z).detach(), truth, atol=1e-6, rtol=0)


def test_held_out_2d_is_the_exact_nll_of_a_gaussian_energy():
    energy = Quadratic()
    x = energy.m.detach() + 0.7 * torch.randn(4000, 2, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    nll, se, log_z = held_out_2d(energy, x, bound=8.0, n=800)
    exact = -torch.distributions.Normal(energy.m.detach(), 0.7).log_prob(x).sum(1)
    assert log_z == pytest.approx(math.log(2 * math.pi * 0.7**2), abs=1e-6)
    assert nll == pytest.approx(float(exact.mean()), abs=1e-6)
    assert se == pytest.approx(float(exact.std() / math.sqrt(len(x))), rel=1e-3)


def test_train_cd_is_the_chapters_loop_and_refuses_unknown_data():
    """train_cd is cd_loss on the buffer's chains through fit, step for step (the same losses as the loop written
    out), and names the toy data sets when given another."""
    kw = dict(chain_steps=3, steps=15, hidden=16, batch=32, buffer_size=200, seed=2)
    _, _, history = train_cd("moons", **kw, progress=False)
    torch.manual_seed(budget.seed(2))
    energy = EnergyMLP(2, 16, 3)
    buffer = ReplayBuffer(2, size=200, bound=toy2d.BOUNDS["moons"],
                          generator=torch.Generator().manual_seed(budget.seed(2)))
    by_hand = fit(energy, lambda x: cd_loss(energy, x, negative_samples(energy, buffer, len(x), 3, 0.01)),
                  lambda n, g: toy2d.sample("moons", n, g), steps=15, batch_size=32, lr=1e-3, seed=2, progress=False)
    assert history.loss == by_hand.loss
    with pytest.raises(ValueError, match="unknown toy data set 'moon'; choose one of"):
        train_cd("moon", **kw)
    with pytest.raises(ValueError, match=r"batch \(32\) must not exceed buffer_size \(20\)"):
        train_cd("moons", **{**kw, "buffer_size": 20})
    for bad, message in [("chain_steps", "chain_steps"), ("step_size", "step_size must be a positive number"),
                         ("penalty", "penalty must be >= 0")]:
        with pytest.raises(ValueError, match=message):  # before any training
            train_cd("moons", **{**kw, bad: -1})


def test_train_cd_on_a_tensor_of_points_uses_their_dimension_and_needs_a_bound():
    """On a tensor of points (here 16 of dimension 5) the energy and the buffer take the data's dimension, the chains
    start in [-bound, bound]^d, and the run is the hand-written loop with the given penalty, step for step."""
    data = 2 * torch.rand(16, 5, generator=torch.Generator().manual_seed(0)) - 1
    kw = dict(chain_steps=2, steps=5, hidden=8, batch=8, buffer_size=40, seed=1, progress=False)
    energy, buffer, history = train_cd(data, bound=0.5, penalty=0.001, **kw)
    assert energy.dim == 5 and buffer.points.shape == (40, 5) and buffer.bound == 0.5
    torch.manual_seed(budget.seed(1))
    by_hand_energy = EnergyMLP(5, 8, 3)
    by_hand_buffer = ReplayBuffer(5, size=40, bound=0.5, generator=torch.Generator().manual_seed(budget.seed(1)))
    assert float(by_hand_buffer.points.abs().max()) <= 0.5
    by_hand = fit(by_hand_energy, lambda x: cd_loss(by_hand_energy, x, negative_samples(
        by_hand_energy, by_hand_buffer, len(x), 2, 0.01), penalty=0.001), data, steps=5, batch_size=8, lr=1e-3, seed=1,
        progress=False)
    assert history.loss == by_hand.loss  # the same loop, with the penalty passed on
    assert train_cd(data, bound=0.5, **kw)[2].loss != history.loss  # the default penalty, 0.1, is another loss
    with pytest.raises(ValueError, match="needs bound > 0"):
        train_cd(data, **kw)
    with pytest.raises(ValueError, match="NaN|finite"):
        train_cd(torch.full((16, 5), math.nan), bound=1.0, **kw)


def test_the_contrastive_divergence_gradient_is_the_likelihoods():
    """With exact model samples, the gradient of cd_loss (no penalty) estimates the gradient of the mean NLL:
    E_data[grad E] - E_model[grad E] = grad (E_data[E] + log Z)."""
    g = torch.Generator().manual_seed(0)
    energy = Quadratic()
    data = torch.tensor([1.2, 0.3], dtype=torch.float64) + 1.1 * torch.randn(200_000, 2, generator=g,
                                                                            dtype=torch.float64)
    model_samples = energy.m.detach() + 0.7 * torch.randn(200_000, 2, generator=g, dtype=torch.float64)
    grads_cd = torch.autograd.grad(cd_loss(energy, data, model_samples, penalty=0.0), list(energy.parameters()))
    nll = energy(data).mean() + torch.log(2 * math.pi * torch.exp(2 * energy.log_s))  # exact log Z
    grads_exact = torch.autograd.grad(nll, list(energy.parameters()))
    for a, b in zip(grads_cd, grads_exact):
        torch.testing.assert_close(a, b, atol=0.02, rtol=0.02)


def test_langevin_on_minus_grad_energy_reaches_the_models_law():
    energy = Quadratic()
    g = torch.Generator().manual_seed(1)
    x = langevin(energy.score, 4 * torch.rand(8000, 2, generator=g, dtype=torch.float64) - 2, 0.01, 1500, g)
    assert (x.mean(0) - energy.m.detach()).abs().max() < 0.04
    assert (x.std(0) - 0.7).abs().max() < 0.03


def test_replay_buffer_keeps_its_chains_and_renews_a_share():
    buffer = ReplayBuffer(2, size=1000, bound=3.0, fresh=0.0, generator=torch.Generator().manual_seed(2))
    x = buffer.draw(100)
    assert x.abs().max() <= 3.0
    buffer.push(torch.full_like(x, 7.0))
    assert int((buffer.points == 7.0).all(1).sum()) == 100
    with pytest.raises(ValueError, match="push the points of the last draw, once"):
        buffer.push(x)
    renewing = ReplayBuffer(2, size=20_000, fresh=0.3, generator=torch.Generator().manual_seed(3))
    renewing.points.fill_(9.0)
    share = float((renewing.draw(20_000) != 9.0).all(1).float().mean())
    assert abs(share - 0.3) < 4 * math.sqrt(0.3 * 0.7 / 20_000)
    with pytest.raises(ValueError, match="fresh must be a share"):
        ReplayBuffer(2, fresh=1.5)
    with pytest.raises(ValueError, match=r"x must have shape \(batch, 2\)"):
        EnergyMLP(2)(torch.zeros(3, 5))


def test_the_buffers_books_count_draws_since_each_start():
    """draws counts the draws each chain has been through since it started: one more at each push, back to one for a
    chain renewed at its draw; a draw that is never pushed leaves the books as they were."""
    buffer = ReplayBuffer(2, size=50, fresh=0.0, generator=torch.Generator().manual_seed(1))
    assert int(buffer.draws.sum()) == 0
    for _ in range(3):
        buffer.push(buffer.draw(50))
    assert (buffer.draws == 3).all()
    buffer.draw(10)  # not pushed: the chains did not move
    assert (buffer.draws == 3).all()
    buffer.fresh = 1.0
    x = buffer.draw(20)
    buffer.push(x)
    assert int((buffer.draws == 1).sum()) == 20 and int((buffer.draws == 3).sum()) == 30
    with pytest.raises(ValueError, match="push the points of the last draw, once"):
        buffer.push(x)


def test_mean_chain_steps_is_what_the_buffers_books_count():
    """The closed form k (1 - (1 - rho n/N)^T) / rho against the books of buffers drawn and pushed T times (the mean
    over independent buffers, within 4 standard errors); it tends to k / rho, and to k T n / N without renewals."""
    k, steps, batch, size, rho = 2, 300, 200, 2000, 0.05
    means = []
    for seed in range(8):
        buffer = ReplayBuffer(2, size=size, fresh=rho, generator=torch.Generator().manual_seed(seed))
        for _ in range(steps):
            buffer.push(buffer.draw(batch))
        means.append(k * float(buffer.draws.double().mean()))
    means = torch.tensor(means, dtype=torch.float64)
    expected = mean_chain_steps(k, steps, batch, size, rho)
    assert expected == pytest.approx(k * (1 - (1 - rho * batch / size) ** steps) / rho)
    assert abs(float(means.mean()) - expected) < 4 * float(means.std()) / math.sqrt(len(means))
    assert abs(float(means.mean()) - expected) < 0.02 * expected
    assert mean_chain_steps(k, 10**6, batch, size, rho) == pytest.approx(k / rho)
    assert mean_chain_steps(k, steps, batch, size, 0.0) == pytest.approx(k * steps * batch / size)
    assert mean_chain_steps(k, steps, batch, size, rho) < k * steps * batch / size
    with pytest.raises(ValueError, match="fresh must be a share"):
        mean_chain_steps(k, steps, batch, size, 1.5)
    with pytest.raises(ValueError, match="batch <= buffer_size"):
        mean_chain_steps(k, steps, size + 1, size, rho)


def test_a_short_contrastive_divergence_run_learns_a_gaussian():
    """An EnergyMLP trained by CD on N((1, -1), 0.5^2 I) for a few hundred steps: its density, normalised on the grid,
    has a held-out NLL within 0.15 nats of the data's entropy. (Long Langevin runs on such a short-run-trained energy
    may still drift away from the data: what the chapter measures.)"""
    torch.manual_seed(0)
    energy = EnergyMLP(2, hidden=64, depth=2)
    centre = torch.tensor([1.0, -1.0])
    buffer = ReplayBuffer(2, size=4000, bound=4.0, generator=torch.Generator().manual_seed(4))

    def loss(batch):
        return cd_loss(energy, batch, negative_samples(energy, buffer, len(batch), steps=20, step=0.01))

    fit(energy, loss, lambda n, g: centre + 0.5 * torch.randn(n, 2, generator=g), steps=400, batch_size=256, lr=3e-3,
        progress=False)
    log_z = log_partition(energy, bound=5.0, n=300)
    test = centre + 0.5 * torch.randn(5000, 2, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        nll = float(-log_prob(energy, test, log_z).mean())
    entropy = 1 + math.log(2 * math.pi * 0.25)  # of N(m, 0.5^2 I) in 2-D
    assert entropy - 0.05 < nll < entropy + 0.15
    with torch.no_grad():  # the data's centre has a lower energy than every corner of the square
        assert float(energy(centre[None])) < float(energy(torch.tensor([[4.0, 4.0], [-4, 4], [4, -4], [-4, -4]])).min())


def test_denoising_score_matching_is_minimised_by_the_blurred_laws_energy():
    """For Gaussian data N(m, s^2 I), the energy of N(m, (s^2 + sigma^2) I) has a lower DSM loss than energies of
    other widths or centres, with the same noise."""
    from dgm_course.ebm import denoising_score_matching_loss

    g = torch.Generator().manual_seed(7)
    x = torch.tensor([0.5, -1.0], dtype=torch.float64) + 0.7 * torch.randn(100_000, 2, generator=g, dtype=torch.float64)
    sigma = 0.3
    blurred = math.sqrt(0.7**2 + sigma**2)
    losses = {}
    for name, (m, s) in {"blurred": ((0.5, -1.0), blurred), "data": ((0.5, -1.0), 0.7), "wide": ((0.5, -1.0), 1.2),
                         "shifted": ((0.8, -1.0), blurred)}.items():
        loss = denoising_score_matching_loss(Quadratic(m, s), x, sigma, torch.Generator().manual_seed(8))
        losses[name] = float(loss.detach())
    assert min(losses, key=losses.get) == "blurred"
    with pytest.raises(ValueError, match="sigma must be positive"):
        denoising_score_matching_loss(Quadratic(), x[:4], 0.0)


def test_the_langevin_step_checker_accepts_the_step_and_catches_a_missing_half():
    from dgm_course.exercises.ebm import check_langevin_step

    assert check_langevin_step(lambda x, score, step, z: x + step / 2 * score + step**0.5 * z)
    report = check_langevin_step(lambda x, score, step, z: x + step * score + step**0.5 * z)
    assert not report and "standard deviation" in str(report)


class FullGaussian(nn.Module):
    """E(x) = (x - m)^T A (x - m) / 2 with A = L L^T + eps I: the energy of N(m, A^-1)."""

    def __init__(self, dim=2):
        super().__init__()
        self.m = nn.Parameter(torch.zeros(dim, dtype=torch.float64))
        self.L = nn.Parameter(torch.eye(dim, dtype=torch.float64))

    def precision(self):
        return self.L @ self.L.T + 1e-6 * torch.eye(len(self.m), dtype=torch.float64)

    def forward(self, x):
        d = x - self.m
        return 0.5 * ((d @ self.precision()) * d).sum(1)


def test_hyvarinens_loss_is_the_explicit_score_matching_loss_up_to_a_constant():
    """J(theta) + 1/2 E|grad log p|^2 = 1/2 E|s_theta - grad log p|^2 (integration by parts), for energies that the
    loss never saw (two Gaussians, whose trace terms are -8 and -1/2, and a random network), on the course's 2-D
    mixture whose score is exact; within five standard errors."""
    from dgm_course.ebm import score_matching_loss

    g = torch.Generator().manual_seed(11)
    x = toy2d.sample("8gaussians", 200_000, g).double()
    y = x.clone().requires_grad_(True)
    (true_score,) = torch.autograd.grad(toy2d.noised_log_density("8gaussians", y, 1.0, 0.0).sum(), y)  # exact
    constant = 0.5 * (true_score ** 2).sum(1)
    torch.manual_seed(0)
    network = EnergyMLP(2, 32, 2).double()
    for seed, energy in enumerate([Quadratic((0.5, -1.0), 0.5), Quadratic((0.0, 0.0), 2.0),
                                   lambda z: 20 * network(z)]):
        batches = []  # per batch of 5,000 points: explicit loss - C - J, mean zero by the theorem
        for chunk in torch.split(torch.arange(len(x)), 5_000):
            z = x[chunk].clone().requires_grad_(True)
            (grad,) = torch.autograd.grad(energy(z).sum(), z)
            explicit = 0.5 * ((-grad - true_score[chunk]) ** 2).sum(1).mean()
            batches.append(float(explicit - constant[chunk].mean() - score_matching_loss(energy, x[chunk]).detach()))
        gap = torch.tensor(batches)
        assert abs(float(gap.mean())) < 5 * float(gap.std()) / math.sqrt(len(gap)), seed


def test_sliced_score_matching_has_the_exact_losss_expectation():
    from dgm_course.ebm import score_matching_loss

    torch.manual_seed(2)
    energy = EnergyMLP(3, 16, 2).double()
    x = torch.randn(64, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    exact = float(score_matching_loss(energy, x).detach())
    g = torch.Generator().manual_seed(4)
    for k in (1, 4):
        sliced = torch.tensor([float(score_matching_loss(energy, x, projections=k, generator=g).detach())
                               for _ in range(800 // k)])
        assert abs(float(sliced.mean()) - exact) < 5 * float(sliced.std()) / math.sqrt(len(sliced)), k
        assert float(sliced.std()) > 0  # the projections are random
    with pytest.raises(ValueError, match="projections"):
        score_matching_loss(energy, x, projections=0)


def test_score_matching_on_a_gaussian_family_gives_the_sample_precision():
    """Hyvärinen (2005): for Gaussian energies, the score-matching estimate is the maximum-likelihood one, the
    inverse of the sample covariance, and the sample mean."""
    from dgm_course.ebm import score_matching_loss

    g = torch.Generator().manual_seed(5)
    cov = torch.tensor([[1.0, 0.6], [0.6, 0.5]], dtype=torch.float64)
    x = torch.randn(4000, 2, dtype=torch.float64, generator=g) @ torch.linalg.cholesky(cov).T
    x = x + torch.tensor([1.0, -2.0], dtype=torch.float64)
    model = FullGaussian()
    optimizer = torch.optim.LBFGS(model.parameters(), max_iter=500, tolerance_grad=1e-12, tolerance_change=1e-15,
                                  line_search_fn="strong_wolfe")

    def closure():
        optimizer.zero_grad()
        loss = score_matching_loss(model, x)
        loss.backward()
        return loss

    optimizer.step(closure)
    sample_cov = torch.cov(x.T, correction=0)
    assert torch.allclose(model.precision().detach(), torch.linalg.inv(sample_cov), atol=1e-5)
    assert torch.allclose(model.m.detach(), x.mean(0), atol=1e-5)
