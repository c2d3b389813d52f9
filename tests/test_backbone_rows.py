"""Every row of the backbone table builds, predicts, preprocesses and fine-tunes as it says.

Each model is built once per row (a module-scoped fixture), at the row's minimum size,
through the real ImageNet loading path with the download and the weight loading stubbed
out: the weights stay random and the file Keras asks for is recorded. The first row of
each keras.applications family runs in the fast tier, but for the two whose build alone
takes seconds; its bigger siblings share the same code and are marked slow.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass

import keras
import numpy as np
import pytest
from keras.src.utils import file_utils

from experiments import models
from experiments.models.registry import first_of_each_family
from experiments.training.phases import finetune
from experiments.training.settings import compose

CLASSES = 3


FIRSTS = set(first_of_each_family())
# Firsts of their family all the same, in the slow tier: building one costs 4 to 5 s (with
# its tests, 13 s of the fast tier's 157 test seconds, 2-core AMD EPYC without AVX512).
SLOW_TO_BUILD = {"inceptionresnetv2", "nasnet_mobile"}


def _params():
    fast = FIRSTS - SLOW_TO_BUILD
    return [
        pytest.param(name, marks=[] if name in fast else [pytest.mark.slow], id=name)
        for name in models.names()
    ]


@dataclass
class Built:
    row: models.BackboneSpec
    model: keras.Model
    requested: list[str]  # the weight files keras.applications asked for
    pixels: np.ndarray  # raw 0-255 images of the row's minimum size


def _all_layers(layer):
    for inner in getattr(layer, "layers", []):
        yield inner
        yield from _all_layers(inner)


@pytest.fixture(scope="module", params=_params())
def built(request):
    row = models.spec(request.param)
    size, channels = row.min_size, row.channels or 1
    requested: list[str] = []
    weights = "imagenet" if row.imagenet else "null"
    cfg = compose(
        [
            f"backbone={row.name}",
            f"backbone.weights={weights}",
            "dataset=shapes",
            f"dataset.image_size={size}",
        ]
    )
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(file_utils, "get_file", lambda name, *a, **k: requested.append(name))
        patch.setattr(keras.Model, "load_weights", lambda self, *a, **k: None)
        model = models.build(cfg, (size, size, channels), CLASSES, frozen_bn=True)
    pixels = np.random.default_rng(0).integers(0, 256, (2, size, size, channels))
    yield Built(row, model, requested, pixels.astype("float32"))
    keras.backend.clear_session()


def test_builds_at_its_minimum_size_and_predicts_raw_pixels(built):
    assert [layer.name for layer in built.model.layers] == ["image", "preprocess", "base", "head"]
    probs = np.asarray(built.model(built.pixels))  # eager: one call, no graph to trace
    assert probs.shape == (2, CLASSES) and np.all(np.isfinite(probs))
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)


def test_preprocessing_is_the_families_preprocess_input(built):
    row = built.row
    ours = np.asarray(built.model.get_layer("preprocess")(built.pixels))
    if row.imagenet:
        reference = importlib.import_module(row.family).preprocess_input(built.pixels.copy())
    else:
        reference = built.pixels / 255.0
    np.testing.assert_allclose(ours, reference, rtol=0, atol=1e-4)
    if row.preprocessing == "included":  # preprocess_input does nothing: the base scales
        first = [type(layer).__name__ for layer in built.model.get_layer("base").layers[:3]]
        assert {"Rescaling", "Normalization"} & set(first), first


def test_imagenet_weights_file_is_the_one_keras_loads(built):
    row = built.row
    if not row.imagenet:
        assert built.requested == []
        return
    assert built.requested == [row.imagenet_file(row.min_size)]


@pytest.mark.slow
def test_saved_model_loads_back_in_safe_mode(built, tmp_path):
    """What ``runs:/`` loading does, for each family's layers (ConvNeXt's LayerScale...)."""
    if built.row.name not in FIRSTS:
        pytest.skip("the first row of its family has the same layer classes")
    built.model.save(tmp_path / "model.keras")
    loaded = keras.saving.load_model(tmp_path / "model.keras", safe_mode=True)
    expected = np.asarray(built.model(built.pixels))
    np.testing.assert_allclose(np.asarray(loaded(built.pixels)), expected, rtol=1e-4, atol=1e-5)


def test_finetuning_step_keeps_the_rows_normalization_frozen(built):
    model, row = built.model, built.row
    base = model.get_layer("base")
    finetune.unfreeze(base, None, row.frozen)
    frozen_kinds = tuple(getattr(keras.layers, name) for name in row.frozen)
    frozen = [layer for layer in _all_layers(base) if isinstance(layer, frozen_kinds)]
    assert all(not layer.trainable for layer in frozen)
    assert base.trainable_variables  # the rest of the base trains
    layer_norms = keras.layers.LayerNormalization
    norms = [layer for layer in _all_layers(base) if isinstance(layer, layer_norms)]
    assert all(layer.trainable for layer in norms)  # ConvNeXt's: trained, see phases/finetune.py
    if row.name not in FIRSTS:
        # The step below shows Keras keeps these layer classes still. The family's first row
        # freezes the same classes and takes the step; a big sibling's eager step costs
        # seconds (ConvNeXt XLarge: 15).
        first = next(models.spec(name) for name in FIRSTS if models.spec(name).family == row.family)
        assert row.frozen == first.frozen
        return
    before = [w.numpy().copy() for layer in frozen for w in layer.weights]
    head = model.get_layer("head").trainable_variables
    head_before = [v.numpy().copy() for v in head]
    # Eagerly: one step of a deep model runs faster than tracing its training graph.
    model.compile(
        optimizer=keras.optimizers.SGD(0.1),
        loss="sparse_categorical_crossentropy",
        run_eagerly=True,
    )
    model.train_on_batch(built.pixels, np.array([0, 1]))
    assert any(not np.array_equal(a, v.numpy()) for a, v in zip(head_before, head, strict=True))
    after = [w.numpy() for layer in frozen for w in layer.weights]
    assert all(np.array_equal(a, b) for a, b in zip(before, after, strict=True))


@pytest.mark.slow
def test_gradcam_maps_the_rows_last_spatial_layer(built):
    """``explain`` works for every family: the target is found inside the nested base, and
    the gradient of the explained class reaches it (a map the size of the image, finite)."""
    from experiments.explaining import gradcam

    if built.row.name not in FIRSTS:
        pytest.skip("the first row of its family has the same layer classes")
    explain = gradcam.explainer(built.model)
    assert len(explain.target.output.shape) == 4
    cams, chosen, probs = explain.maps(built.pixels)
    assert cams.shape == built.pixels.shape[:3] and np.all(np.isfinite(cams))
    assert cams.min() >= 0 and cams.max() <= 1
    np.testing.assert_allclose(probs, np.asarray(built.model(built.pixels)), atol=1e-4)
