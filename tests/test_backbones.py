"""Backbones: the reference network is exact, and the registry knows each one's limits."""

from __future__ import annotations

import pytest

from experiments import backbones
from experiments.config import compose
from experiments.errors import ConfigError


def test_custom_cnn_is_the_reference_network_exactly():
    model = backbones.build(compose(), (28, 28, 1), 10)
    assert model.count_params() == 93322
    kinds = [
        type(layer).__name__
        for part in ("preprocess", "base", "head")
        for layer in model.get_layer(part).layers
    ]
    assert kinds == [
        "Rescaling",
        "Conv2D", "MaxPooling2D", "Conv2D", "MaxPooling2D", "Conv2D", "Flatten",
        "Dense", "Dense",
    ]  # fmt: skip
    assert [layer.units for layer in model.get_layer("head").layers] == [64, 10]
    assert model.output_shape == (None, 10)


def test_custom_cnn_minimum_size_really_is_the_minimum():
    size = backbones.spec("custom_cnn").min_size
    backbones.build(compose(), (size, size, 1), 4)
    with pytest.raises(ValueError):
        backbones.build(compose(), (size - 1, size - 1, 1), 4)


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
    assert backbones.spec(backbone).min_size == size
    model = backbones.build(cfg, (size, size, channels), 4)
    assert model.get_layer("base").count_params() == params  # the keras.applications base
    assert model.output_shape == (None, 4)
    assert [layer.name for layer in model.layers] == ["image", "preprocess", "base", "head"]


def test_unknown_backbone_names_the_choices():
    with pytest.raises(ConfigError, match="custom_cnn"):
        backbones.spec("resnet")
