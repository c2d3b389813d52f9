"""The frozen base's features: computed once per image cache and weights, reused by later runs."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from experiments import models
from experiments.data import disk_array
from experiments.data import registry as datasets
from experiments.training import frozen_features, phases
from experiments.training.settings import compose


class Callbacks:
    """A phase's callback factory without callbacks, keeping the tags the phase sets."""

    def __init__(self):
        self.tags = {}

    def __call__(self, stage, first_step):
        return []

    def tag(self, tags):
        self.tags.update(tags)


@pytest.fixture
def transfer(workdir):
    """Train a transfer head on 32 px shapes; the tags set and the test predictions."""

    def train(*overrides, weights_seed=0):
        cfg = compose(
            [
                "backbone=mobilenet",
                "backbone.weights=null",
                "phase=transfer",
                "dataset=shapes",
                "dataset.image_size=32",
                "dataset.per_class=10",
                "trainer.epochs=1",
                "trainer.verbose=0",
                "cost=quick",
                "interpretation=off",
                *overrides,
            ]
        )
        channels = models.spec(cfg.backbone.name).channels
        data = datasets.load(cfg.dataset, cfg.seed, channels=channels)
        # From a cleared session, as every job of a sweep starts: what ran before in this
        # process must not change the random base's weights (the features' key).
        keras.backend.clear_session()
        keras.utils.set_random_seed(weights_seed)  # the random base's weights
        model = phases.module("transfer").build(cfg, data)
        callbacks = Callbacks()
        phases.module("transfer").train(model, cfg, data, callbacks)
        predictions = model.predict(np.asarray(data.x_test), verbose=0)
        keras.backend.clear_session()
        return callbacks.tags.get("frozen_features"), predictions

    return train


def feature_folders(workdir):
    return sorted(p.parent for p in (workdir / "data" / ".cache" / "features").glob("*/done.npy"))


@pytest.mark.slow
def test_a_second_run_reuses_the_features_and_other_weights_recompute_them(transfer, workdir):
    first, predicted = transfer("optimizer.lr=0.001")
    assert first == "computed"
    again, _ = transfer("optimizer.lr=0.01")  # a learning-rate sweep's next job
    assert again == "reused"
    assert len(feature_folders(workdir)) == 1
    other, _ = transfer("optimizer.lr=0.001", weights_seed=1)  # the same images, other weights
    assert other == "computed"
    assert len(feature_folders(workdir)) == 2
    repeat, repeated = transfer("optimizer.lr=0.001")
    assert repeat == "reused"
    np.testing.assert_allclose(repeated, predicted, atol=1e-6)  # reused features, same head
    # The folder changes: its image cache is replaced, and the features made from it go too.
    assert transfer("dataset.per_class=11")[0] == "computed"
    assert len(feature_folders(workdir)) == 1


@pytest.mark.slow
def test_another_split_computes_only_the_images_not_there_yet(transfer, workdir):
    assert transfer("seed=1")[0] == "computed"
    how = transfer("seed=2")[0]
    assert how.startswith("computed for ") and ", reused for " in how
    assert transfer("seed=1")[0] == transfer("seed=2")[0] == "reused"


@pytest.mark.slow
def test_features_from_the_cache_train_the_head_as_in_memory_ones(transfer, monkeypatch):
    _, on_disk = transfer()
    _, in_memory = transfer("dataset.cache=false")
    np.testing.assert_allclose(on_disk, in_memory, atol=1e-5)
    # Too large for memory: streamed from the features file, batch by batch, all the same.
    monkeypatch.setattr(frozen_features, "IN_MEMORY", 0)
    seen = []
    original = frozen_features.Features.__init__

    def spy(self, train, val, how):
        seen.append(type(train))
        original(self, train, val, how)

    monkeypatch.setattr(frozen_features.Features, "__init__", spy)
    _, streamed = transfer()
    _, spilled = transfer("dataset.cache=false")
    assert seen == [disk_array.DiskArray, disk_array.DiskArray]
    np.testing.assert_allclose(streamed, in_memory, atol=1e-5)
    np.testing.assert_allclose(spilled, in_memory, atol=1e-5)
