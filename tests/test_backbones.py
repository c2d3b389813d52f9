"""Backbones: the reference network is exact, and the registry knows each one's limits."""

from __future__ import annotations

import pytest

from experiments import backbones
from experiments.config import compose
from experiments.errors import ConfigError


def test_custom_cnn_is_the_reference_network_exactly():
    model = backbones.build(compose(), (28, 28, 1), 10)
    assert model.count_params() == 93322
    kinds = [type(layer).__name__ for layer in model.layers]
    assert kinds == [
        "Rescaling", "Conv2D", "MaxPooling2D", "Conv2D", "MaxPooling2D", "Conv2D",
        "Flatten", "Dense", "Dense",
    ]  # fmt: skip
    assert model.output_shape == (None, 10)


def test_custom_cnn_minimum_size_really_is_the_minimum():
    size = backbones.spec("custom_cnn").min_size
    backbones.build(compose(), (size, size, 1), 4)
    with pytest.raises(ValueError):
        backbones.build(compose(), (size - 1, size - 1, 1), 4)


def test_unknown_backbone_names_the_choices():
    with pytest.raises(ConfigError, match="custom_cnn"):
        backbones.spec("resnet")
