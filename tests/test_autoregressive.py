"""MADE against what must hold: the Jacobian of its outputs strictly triangular in its order (autograd, random
weights), probabilities over all binary vectors summing to one, and its sampler reaching its own law."""

import itertools
import math

import pytest
import torch

from dgm_course.autoregressive import MADE, CausalTransformer, MaskedConv2d, PixelCNN, dependence


def _randomise(model, std=1.0):
    """Random weights in every masked layer of a MADE (the direct connection's too), not just the initial ones."""
    for layer in [*model.layers, *([model.direct] if model.direct is not None else [])]:
        torch.nn.init.normal_(layer.weight, std=std)


@pytest.mark.parametrize("k", [0, 1, 2])
@pytest.mark.parametrize("direct", [False, True])
def test_made_jacobian_is_strictly_triangular_in_its_order(k, direct):
    torch.manual_seed(k)
    model = MADE(6, hidden=32, depth=2, orders=3, seed=k, direct=direct).double()
    model.use_order(k)
    _randomise(model)
    x = torch.rand(1, 6, dtype=torch.float64)
    jac = torch.autograd.functional.jacobian(lambda v: model(v[None])[0], x[0])  # (outputs, inputs)
    position = model.order
    allowed = position[:, None] > position[None, :]  # output j may see input j' only if j' comes first
    assert (jac[~allowed] == 0).all()
    assert (jac[allowed] != 0).float().mean() > 0.5  # and it does see most of them


def test_made_direct_connection_is_the_strict_order_and_starts_as_the_plain_made():
    torch.manual_seed(0)
    plain = MADE(6, hidden=16, depth=2, orders=3, seed=1)
    torch.manual_seed(0)
    direct = MADE(6, hidden=16, depth=2, orders=3, seed=1, direct=True)
    x = torch.randint(0, 2, (5, 6)).float()
    for k in range(3):
        plain.use_order(k)
        direct.use_order(k)
        position = direct.order
        assert torch.equal(direct.direct.mask, (position[:, None] > position[None, :]).float())  # every earlier input
        assert torch.equal(direct(x), plain(x))  # zero at the start: the plain MADE's logits


@pytest.mark.parametrize("k", [0, 1])
@pytest.mark.parametrize("direct", [False, True])
def test_made_probabilities_sum_to_one(k, direct):
    torch.manual_seed(10 + k)
    model = MADE(5, hidden=16, depth=2, orders=2, seed=k, direct=direct).double()
    model.use_order(k)
    _randomise(model, std=0.5)
    every = torch.tensor(list(itertools.product([0.0, 1.0], repeat=5)), dtype=torch.float64)
    with torch.no_grad():
        total = float(model.log_prob(every).exp().sum())
    assert total == pytest.approx(1.0, abs=1e-12)


def _made_in_a_random_order(direct=False):
    model = MADE(3, hidden=16, depth=1, orders=2, seed=3, direct=direct)
    model.use_order(1)
    _randomise(model)
    return model


def _random_transformer():
    model = CausalTransformer(3, width=16, heads=2, layers=1)
    for p in model.parameters():
        torch.nn.init.normal_(p, std=0.7)
    return model


@pytest.mark.parametrize("make, seed", [(_made_in_a_random_order, 3), (lambda: _made_in_a_random_order(True), 4),
                                        (_random_transformer, 5)])
def test_the_sampler_reaches_the_models_own_law(make, seed):
    """60,000 draws of 3 bits: each of the 8 frequencies within 4.5 standard errors of the model's probability (the
    sampler goes through the model's order: MADE's is a random one)."""
    torch.manual_seed(seed)
    model = make()
    n = 60_000
    samples = model.sample(n, torch.Generator().manual_seed(seed + 1))
    every = torch.tensor(list(itertools.product([0.0, 1.0], repeat=3)))
    with torch.no_grad():
        p = model.log_prob(every).exp()
    counts = (samples[:, None, :] == every[None]).all(2).sum(0).float()
    z = (counts / n - p) / torch.sqrt(p * (1 - p) / n)
    assert z.abs().max() < 4.5


def test_made_refuses_what_it_cannot_model():
    model = MADE(4, hidden=8)
    with pytest.raises(ValueError, match="Bernoulli: x must hold 0s and 1s"):
        model.log_prob(torch.full((2, 4), 0.5))
    with pytest.raises(ValueError, match=r"x must have shape \(batch, 4\) \(flatten images first\)"):
        model(torch.zeros(2, 1, 2, 2))
    with pytest.raises(ValueError, match=r"k must be an order's index, 0..0; got 5"):
        model.use_order(5)
    with pytest.raises(ValueError, match=r"direct must be True or False; got 'yes'"):
        MADE(4, hidden=8, direct="yes")


def test_made_learns_binarised_digits_below_the_independent_model():
    """A few hundred steps on binarised digits: the held-out NLL falls below the best model with independent pixels
    (the product of the training pixel frequencies), which no chain rule is needed for."""
    from dgm_course.data import images
    from dgm_course.training import fit

    g = torch.Generator().manual_seed(0)
    train = images.binarize(images.load("digits", "train").images.flatten(1), g)
    test = images.binarize(images.load("digits", "test").images.flatten(1), g)
    torch.manual_seed(0)
    model = MADE(64, hidden=256, depth=2)
    fit(model, model.nll, train, steps=600, batch_size=100, lr=2e-3, cosine=True, progress=False)
    freq = train.mean(0).clamp(1e-3, 1 - 1e-3)
    independent = float(-(test * freq.log() + (1 - test) * (1 - freq).log()).sum(1).mean())
    with torch.no_grad():
        nll = float(model.nll(test))
    assert nll < independent - 1 and math.isfinite(nll)


def test_the_made_mask_checker_passes_the_package_and_catches_a_leak():
    from dgm_course.autoregressive import made_masks
    from dgm_course.exercises.autoregressive import check_made_masks

    assert check_made_masks(made_masks)

    def leaky(order, hidden, generator):  # >= into the outputs: output j sees input j
        masks = made_masks(order, hidden, generator)
        d = len(order)
        degrees = torch.randint(1, d, (hidden[-1],), generator=torch.Generator().manual_seed(0))
        masks[-1] = ((order + 1)[:, None] >= degrees[None, :]).float()
        return masks

    report = check_made_masks(leaky)
    assert not report and "does not come before it" in str(report)


# PixelCNN and the causal transformer: the same three properties, through the shared base class.
def _models(height=2, width=3):
    torch.manual_seed(0)
    return {"pixelcnn": PixelCNN(height, width, channels=8, layers=3, kernel=3, gated=False),
            "gated pixelcnn": PixelCNN(height, width, channels=8, layers=3, kernel=3, gated=True),
            "transformer": CausalTransformer(height * width, width=16, heads=2, layers=2),
            "made": MADE(height * width, hidden=32, depth=2)}


@pytest.mark.parametrize("name", ["pixelcnn", "gated pixelcnn", "transformer", "made"])
def test_no_output_depends_on_its_pixel_or_a_later_one(name):
    model = _models(5, 5)[name].double()
    for p in model.parameters():  # random weights, not just the initial ones
        torch.nn.init.normal_(p, std=0.3)
    seen = dependence(model)
    earlier = torch.tril(torch.ones(25, 25, dtype=torch.long), -1)
    assert (seen * (1 - earlier)).sum() == 0, "an output depends on its own pixel or a later one"
    assert seen.sum() > 0.5 * earlier.sum()


def test_the_plain_pixelcnn_has_a_blind_spot_and_the_gated_one_has_none():
    torch.manual_seed(1)
    earlier = torch.tril(torch.ones(64, 64, dtype=torch.long), -1)
    plain = dependence(PixelCNN(8, 8, channels=8, layers=6, kernel=5, gated=False).double())
    gated = dependence(PixelCNN(8, 8, channels=8, layers=4, kernel=5, gated=True).double())
    assert (gated == earlier).all(), "the gated PixelCNN sees every earlier pixel"
    missed = earlier * (1 - plain)
    assert missed.sum() > 0
    # the blind spot is above and to the right: output (4, 2) does not see pixel (3, 7), which comes before it
    assert missed[4 * 8 + 2, 3 * 8 + 7] == 1


@pytest.mark.parametrize("name", ["pixelcnn", "gated pixelcnn", "transformer"])
def test_probabilities_over_every_binary_image_sum_to_one(name):
    model = _models(2, 3)[name].double()
    for p in model.parameters():
        torch.nn.init.normal_(p, std=0.5)
    every = torch.tensor(list(itertools.product([0.0, 1.0], repeat=6)), dtype=torch.float64)
    with torch.no_grad():
        total = float(model.log_prob(every).exp().sum())
    assert total == pytest.approx(1.0, abs=1e-12)


def test_pixelcnn_and_transformer_refuse_bad_input():
    with pytest.raises(ValueError, match="kernel must be odd"):
        PixelCNN(8, 8, kernel=4)
    with pytest.raises(ValueError, match="kind"):
        MaskedConv2d(1, 4, 3, "C")
    with pytest.raises(ValueError, match="width must be divisible by heads; got width 10 and heads 4"):
        CausalTransformer(16, width=10, heads=4)
    model = PixelCNN(4, 4, channels=4, layers=1)
    with pytest.raises(ValueError, match=r"x must have shape \(batch, 16\) \(flatten images first\)"):
        model(torch.zeros(2, 1, 4, 4))
    with pytest.raises(ValueError, match="PixelCNN's conditionals are Bernoulli"):
        model.log_prob(torch.full((2, 16), 0.3))


@pytest.mark.parametrize("name", ["pixelcnn", "gated pixelcnn", "transformer"])
def test_each_model_learns_a_law_that_needs_its_conditionals(name):
    """2 x 3 images whose second row copies the first (three fair bits): entropy 3 ln 2, while the best model with
    independent pixels pays 6 ln 2. A model that sees the row above learns it."""
    from dgm_course.training import fit

    def data(n, g):
        top = torch.randint(0, 2, (n, 3), generator=g).float()
        return torch.cat([top, top], dim=1)

    model = _models(2, 3)[name]
    fit(model, model.nll, data, steps=300, batch_size=256, lr=1e-2, cosine=True, progress=False)
    with torch.no_grad():
        nll = float(model.nll(data(4000, torch.Generator().manual_seed(9))))
    assert nll < 3 * math.log(2) + 0.1
