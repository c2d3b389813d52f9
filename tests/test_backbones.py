"""Backbones: the reference network is exact, and the registry knows each one's limits."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest

from experiments import models
from experiments.errors import ConfigError
from experiments.training.settings import compose


def test_custom_cnn_is_the_reference_network_exactly():
    model = models.build(compose(["backbone=custom_cnn"]), (28, 28, 1), 10)
    assert model.count_params() == 93322
    kinds = [
        type(layer).__name__
        for part in ("preprocess", "base", "head")
        for layer in model.get_layer(part).layers
    ]
    assert kinds == [
        "Rescaling",
        "Conv2D",
        "MaxPooling2D",
        "Conv2D",
        "MaxPooling2D",
        "Conv2D",
        "Flatten",
        "Dense",
        "Dense",
    ]
    assert [layer.units for layer in model.get_layer("head").layers] == [64, 10]
    assert model.output_shape == (None, 10)


@pytest.mark.parametrize("name", ["custom_cnn", "compact_cnn"])
def test_small_cnn_minimum_size_really_is_the_minimum(name):
    size = models.spec(name).min_size
    cfg = compose([f"backbone={name}"])
    models.build(cfg, (size, size, 1), 4)
    with pytest.raises(ValueError):
        models.build(cfg, (size - 1, size - 1, 1), 4)


def test_compact_cnn_is_small_and_computes_in_bfloat16_where_that_is_chosen():
    from keras import mixed_precision

    from experiments.training import precision

    cfg = compose()  # the default: compact_cnn and its recipe
    try:
        precision.apply("mixed_bfloat16")  # what trainer.precision=auto picks on AMX CPUs
        model = models.build(cfg, (28, 28, 1), 10)
    finally:
        mixed_precision.set_global_policy("float32")
    assert model.count_params() == 130_410 <= 150_000
    kinds = [type(layer).__name__ for layer in model.get_layer("base").layers]
    assert kinds == ["Conv2D", "MaxPooling2D"] * 3 + ["Flatten", "Dropout"]
    convs = [layer for layer in model.get_layer("base").layers if type(layer).__name__ == "Conv2D"]
    assert [layer.filters for layer in convs] == [32, 64, 96]
    assert {layer.compute_dtype for layer in convs} == {"bfloat16"}
    assert {layer.variable_dtype for layer in convs} == {"float32"}  # weights stay float32
    predictions = model.get_layer("head").get_layer("predictions")
    assert predictions.compute_dtype == "float32"  # a stable softmax
    assert model.get_layer("augment") is not None  # its random flips, inside the model


def test_cosine_schedule_warms_up_then_decays_to_zero():
    from experiments.training import optimizers

    cfg = compose()
    schedule = optimizers.learning_rate(cfg.optimizer, steps=100)
    assert float(schedule(0)) == pytest.approx(2e-4)
    assert float(schedule(10)) == pytest.approx(2e-3)
    assert float(schedule(55)) == pytest.approx(1e-3, rel=1e-3)
    assert float(schedule(100)) == pytest.approx(0.0, abs=1e-9)
    optimizer = optimizers.build(cfg.optimizer, steps=100)
    assert float(optimizer.learning_rate) == pytest.approx(2e-4)  # at its first step
    constant = optimizers.build(compose(["backbone=custom_cnn"]).optimizer, steps=100)
    assert float(constant.learning_rate) == pytest.approx(1e-3)


@pytest.mark.parametrize(
    "backbone, size, channels, params",
    [
        ("vgg16", 32, 3, 14_714_688),
        ("mobilenet", 32, 3, 3_228_864),
        ("xception", 71, 3, 20_861_480),
    ],
)
def test_applications_build_at_their_minimum_size(backbone, size, channels, params):
    cfg = compose([f"backbone={backbone}", "backbone.weights=null", "dataset=shapes"])
    assert models.spec(backbone).min_size == size
    model = models.build(cfg, (size, size, channels), 4)
    assert model.get_layer("base").count_params() == params  # the keras.applications base
    assert model.output_shape == (None, 4)
    assert [layer.name for layer in model.layers] == ["image", "preprocess", "base", "head"]
    # The base hands the head one tensor: Keras warned at every call when it was a list of one.
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model(np.zeros((1, size, size, channels), np.float32))
    assert not [w for w in caught if "structure of `inputs`" in str(w.message)]


def test_unknown_backbone_names_the_choices():
    with pytest.raises(ConfigError, match="custom_cnn"):
        models.spec("resnet")


FIXTURE = Path(__file__).parent / "fixtures" / "model_logged_before_the_move"


def test_a_model_logged_before_the_package_move_still_loads_and_predicts():
    """Logged models name Keras' own layers only, never this project's module paths."""
    import numpy as np

    from experiments.tracking.logged_models import load_logged_model
    from experiments.training import resume

    model, description = load_logged_model(str(FIXTURE), key="model")
    assert model.name == "custom_cnn" and description.metadata["class_names"][0] == "circle"
    pixels = np.full((2, 32, 32, 3), 128, np.float32)
    probs = np.asarray(model.predict(pixels, verbose=0))
    assert probs.shape == (2, 4) and np.allclose(probs.sum(axis=1), 1, atol=1e-5)
    checkpoint = resume.load_model(FIXTURE / "last.keras")  # what a resumed run loads
    # One epoch: the best epoch is the last, so the checkpoint holds the logged weights.
    assert np.allclose(checkpoint.predict(pixels, verbose=0), probs, atol=1e-5)
