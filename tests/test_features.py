"""The feature map (dgm_course.features): the classifier learns its image set, training is deterministic, the weights
are cached once and read back with their digest, a tampered cache is refused, and the features have their shape."""

from __future__ import annotations

import pytest
import torch

from dgm_course import features
from dgm_course.data import images


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("DGM_DATA", str(tmp_path))
    return tmp_path


@pytest.fixture
def short(monkeypatch):
    """The digits' classifier at 100 steps (a second): the cache's behaviour does not need a good classifier."""
    monkeypatch.setitem(features.RECIPES, "digits", dict(steps=100, batch=128, lr=2e-3))


def test_training_is_deterministic_and_the_cache_reads_back_the_same_weights(cache, short, monkeypatch):
    first = features.feature_map("digits", progress=False)
    assert len(first.digest) == 12 and first.digest == features.weights_digest(first)
    files = list((cache / "features").glob("digits-*.pt"))
    assert len(files) == 1
    again = features.train_classifier("digits", progress=False)  # the same seed and data: the same weights
    assert again.digest == first.digest

    def no_training(*args, **kwargs):
        raise AssertionError("feature_map trained although the cache holds the classifier")

    monkeypatch.setattr(features, "train_classifier", no_training)
    read = features.feature_map("digits")
    assert read.digest == first.digest
    assert all(torch.equal(a, b) for a, b in zip(read.state_dict().values(), first.state_dict().values()))


def test_a_tampered_cache_is_refused_by_name(cache, short):
    features.feature_map("digits", progress=False)
    (path,) = (cache / "features").glob("digits-*.pt")
    saved = torch.load(path, weights_only=True)
    saved["state_dict"]["head.bias"] += 1.0
    torch.save(saved, path)
    with pytest.raises(ValueError, match=r"does not have the digest it was saved with.*retrain=True"):
        features.feature_map("digits")
    assert features.feature_map("digits", retrain=True, progress=False).digest == saved["digest"]


def test_features_have_their_shape_and_bad_input_says_what_is_wrong(cache, short):
    model = features.feature_map("digits", progress=False)
    x = images.load("digits", "test").images[:10]
    phi = features.embed(model, x)
    assert phi.shape == (10, model.dim) and phi.dtype == torch.float64 and (phi >= 0).all()  # ReLU features
    assert torch.equal(features.embed(model, x.reshape(10, -1)), phi)  # flat rows are reshaped
    with pytest.raises(ValueError, match=r"reads images of shape \(n, 1, 8, 8\)"):
        model.features(torch.zeros(3, 1, 28, 28))
    with pytest.raises(ValueError, match="unknown image set 'cifar'"):
        features.feature_map("cifar")
    with pytest.raises(ValueError, match="divisible by 4"):
        features.Classifier((1, 10, 10))


@pytest.mark.slow
def test_the_digits_classifier_learns_the_digits(cache):
    """At its recipe (1,500 steps, about 10 s): at least 95 % of the held-out digits right."""
    model = features.feature_map("digits", progress=False)
    assert features.accuracy(model, "digits") >= 0.95
