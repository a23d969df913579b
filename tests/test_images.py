"""Image data: the loaders' sources, their failures, the IDX reader, binarization and dequantization."""

from __future__ import annotations

import gzip
import sys

import numpy as np
import pytest
import torch

from dgm_course.data import images


def test_digits_split_is_fixed_and_complete():
    train, test = images.load("digits", "train", verbose=False), images.load("digits", "test", verbose=False)
    assert train.images.shape == (1500, 1, 8, 8) and test.images.shape == (297, 1, 8, 8)
    assert 0 <= float(train.images.min()) and float(train.images.max()) == 1.0
    assert set(test.labels.tolist()) == set(range(10))
    again = images.load("digits", "test", verbose=False)
    assert torch.equal(again.images, test.images)
    # no test image is a training image with the same label (the split is a partition of load_digits)
    flat_train = {(tuple(r), int(lab)) for r, lab in zip(train.images.flatten(1).tolist(), train.labels)}
    overlap = sum((tuple(r), int(lab)) in flat_train for r, lab in zip(test.images.flatten(1).tolist(), test.labels))
    assert overlap <= 2  # load_digits holds a handful of exact duplicates, nothing more
    assert "load_digits" in repr(test)


@pytest.mark.skipif(not (images.DEBIAN_DIR / "fashion-mnist" / "t10k-images-idx3-ubyte.gz").exists(),
                    reason="the Debian package dataset-fashion-mnist is not installed (scripts/setup.sh installs it)")
def test_fashion_mnist_from_the_debian_package(capsys):
    test = images.load("fashion-mnist", "test")
    assert test.images.shape == (10_000, 1, 28, 28) and test.labels.shape == (10_000,)
    assert test.images.dtype == torch.float32 and 0 <= float(test.images.min()) and float(test.images.max()) <= 1
    assert set(test.labels.tolist()) == set(range(10))
    assert "/usr/share/datasets/fashion-mnist" in capsys.readouterr().out  # it says where the images came from


def _write_idx(path, array, gz=True):
    header = bytes([0, 0, 8, array.ndim]) + b"".join(int(n).to_bytes(4, "big") for n in array.shape)
    (gzip.open if gz else open)(path, "wb").write(header + array.astype(np.uint8).tobytes())


@pytest.mark.parametrize("gz", [True, False])
def test_read_idx_round_trip_and_bad_files(tmp_path, gz):
    array = np.random.default_rng(0).integers(0, 256, size=(3, 4, 5))
    path = tmp_path / ("a.idx.gz" if gz else "a.idx")
    _write_idx(path, array, gz)
    assert np.array_equal(images.read_idx(path), array)
    (tmp_path / "bad").write_bytes(b"\x00\x00\x0d\x01\x00\x00\x00\x02ab")
    with pytest.raises(ValueError, match="not an IDX file"):
        images.read_idx(tmp_path / "bad")
    (tmp_path / "short").write_bytes(bytes([0, 0, 8, 1, 0, 0, 0, 9]) + b"abc")
    with pytest.raises(ValueError, match="announces"):
        images.read_idx(tmp_path / "short")


def test_a_folder_given_as_root_is_used_first(tmp_path):
    _write_idx(tmp_path / "t10k-images-idx3-ubyte.gz", np.full((2, 28, 28), 255))
    _write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", np.array([3, 7]))
    data = images.load("mnist", "test", root=tmp_path, verbose=False)
    assert data.images.shape == (2, 1, 28, 28) and float(data.images.min()) == 1.0
    assert data.labels.tolist() == [3, 7] and str(tmp_path) in data.source


def test_no_source_names_every_source_and_what_to_do(tmp_path, monkeypatch):
    monkeypatch.setattr(images, "DEBIAN_DIR", tmp_path)
    monkeypatch.delenv("DGM_DATA", raising=False)
    monkeypatch.setitem(sys.modules, "torchvision", None)  # as if torchvision were not installed
    with pytest.raises(images.DataUnavailable) as info:
        images.load("fashion-mnist", "train", verbose=False)
    message = str(info.value)
    for part in (str(tmp_path / "fashion-mnist"), "torchvision (not installed)",
                 "apt-get install dataset-fashion-mnist", "pip install torchvision"):
        assert part in message, message
    with pytest.raises(images.DataUnavailable, match="download=False"):
        images.load("mnist", "test", download=False, verbose=False)


def test_bad_names_are_refused():
    with pytest.raises(ValueError, match="unknown data set 'cifar'.*digits, fashion-mnist, mnist"):
        images.load("cifar")
    with pytest.raises(ValueError, match="unknown split 'valid'"):
        images.load("digits", "valid")


def test_binarize_and_dequantize():
    gen = torch.Generator().manual_seed(0)
    grey = torch.full((20_000, 1, 2, 2), 0.3)
    binary = images.binarize(grey, gen)
    assert set(binary.unique().tolist()) <= {0.0, 1.0}
    assert abs(float(binary.mean()) - 0.3) < 4 * (0.3 * 0.7 / binary.numel()) ** 0.5
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        images.binarize(grey * 4)
    levels = torch.randint(0, 256, (1000, 1, 3, 3), generator=gen)
    y = images.dequantize(levels / 255.0, generator=gen)
    assert torch.equal(torch.floor(y * 256), levels.float()) and float(y.max()) < 1


def test_damaged_or_wrong_files_are_named_and_the_next_source_is_used(tmp_path, monkeypatch):
    good, bad = tmp_path / "good" / "mnist", tmp_path / "bad"
    good.mkdir(parents=True)
    bad.mkdir()
    _write_idx(good / "t10k-images-idx3-ubyte.gz", np.zeros((2, 28, 28)))
    _write_idx(good / "t10k-labels-idx1-ubyte.gz", np.array([1, 2]))
    monkeypatch.setenv("DGM_DATA", str(tmp_path / "good"))
    cases = [  # what the root folder holds -> what the message says about it
        (np.zeros((5, 28, 28)), np.array([1, 2, 3]), "5 images but labels of shape"),
        (np.zeros((2, 28, 28)), np.array([1, 200]), "a label 200"),
        (np.zeros((2, 32, 32)), np.array([1, 2]), "not 28 x 28"),
        ("truncated", np.array([1, 2]), "damaged or truncated"),
    ]
    for pictures, labels, reason in cases:
        if isinstance(pictures, str):
            _write_idx(bad / "t10k-images-idx3-ubyte.gz", np.zeros((2, 28, 28)))
            whole = (bad / "t10k-images-idx3-ubyte.gz").read_bytes()
            (bad / "t10k-images-idx3-ubyte.gz").write_bytes(whole[: len(whole) // 2])
        else:
            _write_idx(bad / "t10k-images-idx3-ubyte.gz", pictures)
        _write_idx(bad / "t10k-labels-idx1-ubyte.gz", labels)
        data = images.load("mnist", "test", root=bad, verbose=False)  # falls back to $DGM_DATA
        assert str(good) in data.source and data.labels.tolist() == [1, 2]
        monkeypatch.setattr(images, "DEBIAN_DIR", tmp_path / "none")
        monkeypatch.delenv("DGM_DATA")  # no other source: the reason is in the message
        with pytest.raises(images.DataUnavailable, match=reason):
            images.load("mnist", "test", root=bad, download=False, verbose=False)
        monkeypatch.undo()
        monkeypatch.setenv("DGM_DATA", str(tmp_path / "good"))
