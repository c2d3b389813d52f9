"""Finding and splitting Fashion-MNIST: search order, seeded split, untouched test set."""

from __future__ import annotations

import numpy as np
import pytest
from omegaconf import OmegaConf

from experiments.data import fashion_mnist
from experiments.data import registry as datasets
from experiments.data.idx import write_idx
from experiments.data.splits import hold_out
from experiments.errors import DataError
from experiments.training.settings import compose


def make_fake_files(folder, n_train=50, n_test=20):
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(1)
    write_idx(
        folder / fashion_mnist.FILES["x_train"], rng.integers(0, 256, (n_train, 28, 28), np.uint8)
    )
    write_idx(folder / fashion_mnist.FILES["y_train"], (np.arange(n_train) % 10).astype(np.uint8))
    write_idx(
        folder / fashion_mnist.FILES["x_test"], rng.integers(0, 256, (n_test, 28, 28), np.uint8)
    )
    write_idx(folder / fashion_mnist.FILES["y_test"], (np.arange(n_test) % 10).astype(np.uint8))
    return folder


def cfg(**overrides):
    base = {"root": None, "limit": None, "val_split": 0.1, "image_size": 28, "channels": 1}
    return OmegaConf.create({**base, **overrides})


def test_dataset_root_comes_first(tmp_path, monkeypatch):
    root = make_fake_files(tmp_path / "mine")
    monkeypatch.setenv("FASHION_MNIST_DIR", str(make_fake_files(tmp_path / "env", n_train=30)))
    folder, source = fashion_mnist.locate(str(root))
    assert folder == root and "dataset.root" in source


def test_environment_variable_comes_before_debian(tmp_path, monkeypatch):
    env = make_fake_files(tmp_path / "env")
    monkeypatch.setenv("FASHION_MNIST_DIR", str(env))
    folder, source = fashion_mnist.locate(None)
    assert folder == env and "FASHION_MNIST_DIR" in source


def test_debian_package_then_keras_cache(tmp_path, monkeypatch):
    monkeypatch.delenv("FASHION_MNIST_DIR", raising=False)
    monkeypatch.setattr(fashion_mnist, "_debian_dir", lambda: None)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    assert fashion_mnist.locate(None) == (None, "download through keras.datasets.fashion_mnist")
    cache = make_fake_files(tmp_path / "keras" / "datasets" / "fashion-mnist")
    folder, source = fashion_mnist.locate(None)
    assert folder == cache and "Keras cache" in source


def test_missing_files_in_dataset_root_name_the_folder(tmp_path):
    with pytest.raises(DataError, match=str(tmp_path / "nothing")):
        fashion_mnist.locate(str(tmp_path / "nothing"))


def test_split_is_seeded_and_disjoint(tmp_path):
    root = str(make_fake_files(tmp_path / "fm", n_train=200))
    a = fashion_mnist.load(cfg(root=root), seed=3)
    b = fashion_mnist.load(cfg(root=root), seed=3)
    c = fashion_mnist.load(cfg(root=root), seed=4)
    np.testing.assert_array_equal(a.x_val, b.x_val)
    assert not np.array_equal(a.x_val, c.x_val)
    assert (len(a.x_train), len(a.x_val), len(a.x_test)) == (180, 20, 20)
    train_rows = {row.tobytes() for row in a.x_train}
    assert not any(row.tobytes() in train_rows for row in a.x_val)
    assert a.x_train.shape[1:] == (28, 28, 1) and a.x_train.dtype == np.uint8


def test_limit_caps_training_and_keeps_the_test_set_whole(tmp_path):
    root = str(make_fake_files(tmp_path / "fm", n_train=200, n_test=30))
    dataset = compose(["dataset=fashion_mnist", f"dataset.root={root}", "dataset.limit=90"]).dataset
    splits = datasets.load(dataset, seed=0)
    assert len(splits.x_train) == 90 and len(splits.x_val) == 10 and len(splits.x_test) == 30


def test_resized_to_rgb_for_backbones_that_need_it(tmp_path):
    root = str(make_fake_files(tmp_path / "fm"))
    splits = fashion_mnist.load(cfg(root=root, image_size=32, channels=3), seed=0)
    assert splits.x_train.shape[1:] == (32, 32, 3)
    np.testing.assert_array_equal(splits.x_test[..., 0], splits.x_test[..., 2])


def test_hold_out_proportions():
    x, y = np.arange(1000), np.arange(1000)
    x_train, _, x_val, _ = hold_out(x, y, 0.2, seed=0)
    assert len(x_train) == 800 and len(x_val) == 200
