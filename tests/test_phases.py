"""Transfer and fine-tuning do what a careful practitioner does by hand."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from experiments import models
from experiments.data import registry as datasets
from experiments.training import phases
from experiments.training.phases import finetune
from experiments.training.settings import compose

SHAPES = [
    "dataset=shapes",
    "dataset.per_class=12",
    "trainer.verbose=0",
    "cost=quick",
    "interpretation=off",
]
# Xception at 72 px, where a random base still passes a signal to train on; the others at
# 32 px, the smallest MobileNet and VGG16 take (their rules do not depend on the size).
XCEPTION = ["backbone=xception", "dataset.image_size=72"]
SMALL = "dataset.image_size=32"


@pytest.fixture
def shapes_cfg(workdir):
    def make(*overrides):
        return compose([*SHAPES, "backbone.weights=null", "trainer.epochs=1", *overrides])

    return make


def load(cfg):
    return datasets.load(cfg.dataset, cfg.seed, channels=models.spec(cfg.backbone.name).channels)


class Callbacks:
    """A phase's callback factory without callbacks: the stages asked for and the tags set."""

    def __init__(self):
        self.stages, self.tags = [], {}

    def __call__(self, stage, first_step):
        self.stages.append((stage, first_step))
        return []

    def tag(self, tags):
        self.tags.update(tags)


def no_callbacks():
    return Callbacks()


def weights_of(layers):
    return [w.numpy().copy() for layer in layers for w in layer.weights]


def same(a, b):
    return len(a) == len(b) and all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))


@pytest.mark.slow  # builds Xception and trains it (5.3 s of the fast tier)
def test_transfer_leaves_the_base_bit_identical(shapes_cfg):
    cfg = shapes_cfg(*XCEPTION, "phase=transfer", "phase.cache_features=false")
    data = load(cfg)
    model = phases.module("transfer").build(cfg, data)
    base, head = model.get_layer("base"), model.get_layer("head")
    before, head_before = weights_of([base]), weights_of([head])
    phases.module("transfer").train(model, cfg, data, no_callbacks())
    assert same(before, weights_of([base]))  # includes BatchNorm moving statistics
    assert not same(head_before, weights_of([head]))
    assert not base.trainable


@pytest.mark.slow  # builds Xception and trains it (7.7 s of the fast tier)
def test_finetune_unfreezes_exactly_the_top_layers_and_keeps_batchnorm(shapes_cfg):
    cfg = shapes_cfg(*XCEPTION, "phase=finetune", "phase.unfreeze=10", "phase.warmup_epochs=1")
    data = load(cfg)
    model = phases.module("finetune").build(cfg, data)
    base = model.get_layer("base")
    bn = [layer for layer in base.layers if isinstance(layer, keras.layers.BatchNormalization)]
    top = base.layers[-10:]
    frozen = [layer for layer in base.layers[:-10] if layer.weights]
    bn_before, frozen_before = weights_of(bn), weights_of(frozen)
    tuned_before = {
        layer.name: weights_of([layer])
        for layer in top
        if layer.weights and not isinstance(layer, keras.layers.BatchNormalization)
    }
    phases.module("finetune").train(model, cfg, data, no_callbacks())

    trainable = {layer.name for layer in base.layers if layer.trainable and layer.weights}
    assert trainable == set(tuned_before)  # the top 10 layers with weights, BatchNorm excepted
    assert same(bn_before, weights_of(bn))  # moving statistics untouched
    assert same(frozen_before, weights_of(frozen))
    changed = [
        name for name, w in tuned_before.items() if not same(w, weights_of([base.get_layer(name)]))
    ]
    assert changed == list(tuned_before)


def test_unfreeze_all_and_zero(shapes_cfg):
    cfg = shapes_cfg("backbone=mobilenet", SMALL, "phase=finetune", "phase.warmup_epochs=1")
    model = phases.module("finetune").build(cfg, load(cfg))
    base = model.get_layer("base")
    names = finetune.unfreeze(base, None)
    expected = [
        layer.name
        for layer in base.layers
        if layer.weights and not isinstance(layer, keras.layers.BatchNormalization)
    ]
    assert names == expected and len(names) > 20
    assert finetune.unfreeze(base, 0) == []
    assert model.get_layer("head").trainable


@pytest.mark.slow  # trains both stages (4.6 s of the fast tier)
def test_finetune_is_recompiled_at_the_low_learning_rate(shapes_cfg):
    cfg = shapes_cfg(
        "backbone=vgg16", SMALL, "phase=finetune", "phase.warmup_epochs=1", "phase.unfreeze=2"
    )
    assert cfg.optimizer.lr == pytest.approx(1e-5)
    data = load(cfg)
    model = phases.module("finetune").build(cfg, data)
    callbacks = Callbacks()
    history = phases.module("finetune").train(model, cfg, data, callbacks)
    assert callbacks.stages == [("warmup", 0), ("finetune", 1)]
    assert len(history["val_accuracy"]) == 2  # both stages on one axis
    assert float(model.optimizer.learning_rate) == pytest.approx(1e-5)


@pytest.mark.slow  # trains two heads (4.2 s of the fast tier)
def test_cached_features_and_live_base_train_the_same_head(shapes_cfg):
    predictions = {}
    for cache in (True, False):
        cfg = shapes_cfg(
            "backbone=vgg16",
            SMALL,
            "phase=transfer",
            f"phase.cache_features={cache}",
            "trainer.epochs=3",
            "backbone.dropout=0.3",
        )
        data = load(cfg)
        keras.utils.set_random_seed(cfg.seed)
        model = phases.module("transfer").build(cfg, data)
        history = phases.module("transfer").train(model, cfg, data, no_callbacks())
        predictions[cache] = (model.predict(np.asarray(data.x_test), verbose=0), history)
    np.testing.assert_allclose(predictions[True][0], predictions[False][0], atol=1e-4)
    np.testing.assert_allclose(
        predictions[True][1]["val_loss"], predictions[False][1]["val_loss"], rtol=1e-4
    )
