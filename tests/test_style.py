"""Style transfer's pieces: Gram matrices and the style and content losses against hand-computed values, VGG-19's
layers and shapes, and the weights loader's fallback to random weights."""

from __future__ import annotations

import pytest
import torch

from dgm_course.applications.style import (
    CONTENT_LAYER,
    STYLE_LAYERS,
    VGG19Features,
    content_loss,
    gram,
    style_layer_loss,
    vgg19,
)


def test_gram_and_the_losses_equal_hand_computed_values():
    # two channels on a 1 x 2 image: F = [[1, 2], [3, 4]], G = F F^T = [[5, 11], [11, 25]]
    f = torch.tensor([[[[1.0, 2.0]], [[3.0, 4.0]]]])
    assert torch.equal(gram(f), torch.tensor([[[5.0, 11.0], [11.0, 25.0]]]))
    # E = sum (G - A)^2 / (4 N^2 M^2) with N = 2 channels, M = 2 positions, A = 0: (25 + 121 + 121 + 625) / 64
    assert float(style_layer_loss(f, torch.zeros(2, 2))) == pytest.approx(892 / 64)
    assert float(style_layer_loss(f, gram(f)[0])) == 0.0
    assert float(content_loss(f, torch.zeros_like(f))) == pytest.approx(0.5 * (1 + 4 + 9 + 16))
    with pytest.raises(ValueError, match="one shape"):
        content_loss(f, torch.zeros(1, 2, 2, 2))
    with pytest.raises(ValueError, match=r"shape \(n, c, h, w\)"):
        gram(f[0])


def test_the_gram_matrix_forgets_where_features_are():
    """The style term sees which features occur together, not where: permuting positions keeps G."""
    gen = torch.Generator().manual_seed(0)
    f = torch.randn(1, 4, 6, 6, generator=gen)
    shuffled = f.flatten(2)[:, :, torch.randperm(36, generator=gen)].reshape(1, 4, 6, 6)
    assert torch.allclose(gram(f), gram(shuffled), atol=1e-5)
    assert not torch.allclose(f, shuffled)


def test_vgg19_has_its_layers_and_shapes():
    net = VGG19Features()
    convs = [m for m in net.features if isinstance(m, torch.nn.Conv2d)]
    assert len(convs) == 16 and len(net.names) == len(net.features) == 37
    assert net.names.index("conv4_2") == 21 and net.names.index("conv5_1") == 28  # torchvision's indices
    out = net(torch.rand(1, 3, 32, 32), STYLE_LAYERS + (CONTENT_LAYER,))
    assert {k: tuple(v.shape) for k, v in out.items()} == {
        "relu1_1": (1, 64, 32, 32), "relu2_1": (1, 128, 16, 16), "relu3_1": (1, 256, 8, 8),
        "relu4_1": (1, 512, 4, 4), "relu4_2": (1, 512, 4, 4), "relu5_1": (1, 512, 2, 2)}
    assert all(bool((v >= 0).all()) for v in out.values())  # read after the ReLU, as Gatys et al. do
    with pytest.raises(ValueError, match="unknown VGG-19 layer"):
        net(torch.rand(1, 3, 8, 8), ["conv6_1"])
    with pytest.raises(ValueError, match=r"shape \(n, 3, h, w\)"):
        net(torch.rand(1, 1, 8, 8), ["conv1_1"])


def test_vgg19_says_which_weights_it_has_and_random_ones_are_reproducible():
    a, source = vgg19("random", seed=3)
    b, _ = vgg19("random", seed=3)
    assert "random weights (seed 3)" in source
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
    assert not any(p.requires_grad for p in a.parameters()) and not a.training
    std = float(a.features[0].weight.std())
    assert std == pytest.approx((2 / 27) ** 0.5, rel=0.1)  # He initialisation: 2 / fan_in, fan_in = 3 * 3 * 3
    auto, source = vgg19("auto", seed=3)
    try:
        import torchvision  # noqa: F401
    except ImportError:
        assert "random weights" in source and "not available here" in source
        with pytest.raises(RuntimeError, match="weights='random'"):
            vgg19("imagenet")
    with pytest.raises(ValueError, match="unknown weights 'places365'; choose one of: auto, imagenet, random"):
        vgg19("places365")


def test_transfer_lowers_the_style_loss_and_keeps_pixels_in_range():
    from dgm_course.applications.style import transfer

    features, _ = vgg19("random", seed=0)
    gen = torch.Generator().manual_seed(0)
    content = torch.rand(3, 32, 32, generator=gen)
    stripes = torch.zeros(3, 32, 32)
    stripes[:, :, ::4] = 1.0  # a texture of vertical lines
    result = transfer(content, stripes, features, steps=30, ratio=1e-4, lr=0.05)
    assert len(result.style) == len(result.content) == 30
    assert result.content[0] == 0.0  # it starts at the photograph
    assert result.style[-1] < 0.5 * result.style[0]
    assert result.image.shape == (1, 3, 32, 32) and 0 <= float(result.image.min()) <= float(result.image.max()) <= 1
    with pytest.raises(ValueError, match="one RGB image"):
        transfer(content[:1], stripes, features, steps=1)
    with pytest.raises(ValueError, match="unknown init 'photo'; choose one of: content, noise"):
        transfer(content, stripes, features, steps=1, init="photo")
    with pytest.raises(ValueError, match="must be positive"):
        transfer(content, stripes, features, steps=1, ratio=0.0)


def _fake_torchvision(monkeypatch, get_state_dict) -> None:
    """Put a stand-in for ``torchvision.models`` in ``sys.modules``, whose ImageNet weights come from
    ``get_state_dict``: the loading path is then tested whether or not torchvision is installed."""
    import sys
    import types

    weights = types.SimpleNamespace(IMAGENET1K_V1=types.SimpleNamespace(get_state_dict=get_state_dict))
    monkeypatch.setitem(sys.modules, "torchvision", types.ModuleType("torchvision"))
    monkeypatch.setitem(sys.modules, "torchvision.models", types.SimpleNamespace(VGG19_Weights=weights))


def test_vgg19_loads_torchvision_weights_by_their_indices_and_falls_back_with_the_reason(monkeypatch):
    reference, _ = vgg19("random", seed=5)  # torchvision's state dict: features.<index>.weight, plus a classifier
    state = {f"features.{k}": v + 0.25 for k, v in reference.features.state_dict().items()}
    state["classifier.0.weight"] = torch.zeros(4096, 25088)
    _fake_torchvision(monkeypatch, lambda progress: state)
    for weights in ("imagenet", "auto"):
        net, source = vgg19(weights, seed=0)
        assert source == "VGG-19 with ImageNet weights (torchvision)"
        assert all(torch.equal(v, state[f"features.{k}"]) for k, v in net.features.state_dict().items())
        assert not any(p.requires_grad for p in net.parameters()) and not net.training

    def offline(progress: bool) -> dict:
        raise OSError("no network")

    _fake_torchvision(monkeypatch, offline)
    net, source = vgg19("auto", seed=5)
    assert source == ("VGG-19 with random weights (seed 5), as in He et al. 2016: the ImageNet weights are not "
                      "available here (OSError)")
    assert all(torch.equal(p, q) for p, q in zip(net.parameters(), reference.parameters()))
    with pytest.raises(RuntimeError, match=r"not available \(OSError: no network\); .* weights='random'"):
        vgg19("imagenet")


def test_the_style_loss_checker():
    from dgm_course.exercises.applications import check_style_loss

    def mine(f, a, scale=1.0):
        x, y = f.flatten(2)[0], a.flatten(2)[0]
        n, m = x.shape
        return scale * ((x @ x.T - y @ y.T) ** 2).sum() / (4 * n**2 * m**2)

    assert check_style_loss(mine).passed
    report = check_style_loss(lambda f, a: mine(f, a, scale=4.0))  # forgot the 4 in the denominator
    assert not report.passed and "892 / 64" in str(report)


def test_network_free_style_and_content_measures():
    from dgm_course.applications.style import content_similarity, patch_energy
    from dgm_course.data import figure3

    photo_, painting = figure3.load("tubingen")[:, :96, :128], figure3.load("starry_night")[:, :96, :128]
    same = patch_energy(photo_, photo_, size=8, n=400)
    other = patch_energy(photo_, painting, size=8, n=400)
    assert 0 <= same < 0.2 * other  # two samples of one image's patches are close; another picture's are far
    assert patch_energy(photo_, painting, n=400, seed=1) == patch_energy(photo_, painting, n=400, seed=1)
    assert content_similarity(photo_, photo_) == pytest.approx(1.0)
    assert content_similarity(photo_, photo_.flip(2)) < 0.5  # the layout mirrored is not the same content
    assert abs(content_similarity(photo_, painting)) < 0.3  # another picture: no relation
    with pytest.raises(ValueError, match="smaller than a patch of 16 x 16"):
        patch_energy(photo_[:, :8, :8], painting, size=16)
    with pytest.raises(ValueError, match="must have one shape"):
        content_similarity(photo_, painting[:, :64])
