"""Backbones: what each network needs, known before TensorFlow is imported, and the model builder.

Each backbone module defines ``SPEC`` (facts about the network), ``preprocessing()`` (the
layers that turn raw 0-255 pixels into what the network expects) and
``base(input_shape, weights)`` (the feature extractor). Every model built here is

    image -> [augment] -> preprocess -> base -> head

with those four parts as named sub-models, so phases can freeze the base, train the head
on cached features, and a logged model predicts from raw pixels with no outside code.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from types import ModuleType

from experiments.errors import ConfigError


@dataclass(frozen=True)
class BackboneSpec:
    name: str
    min_size: int  # smallest input height/width the network accepts
    channels: int | None  # input channels the network needs; None = any
    imagenet: bool  # whether ImageNet weights exist for it
    preprocessing: str  # what its in-model preprocessing does, in words (README's table)
    head_units: int = 0  # a hidden dense layer in the head (0: none)
    head_batchnorm: bool = False  # batch normalisation on that hidden layer


_MODULES = ("compact_cnn", "custom_cnn", "vgg16", "xception", "mobilenet")


def _module(name: str) -> ModuleType:
    if name not in _MODULES:
        raise ConfigError(
            "backbone.name", f"unknown backbone {name!r}; choose one of {list(_MODULES)}"
        )
    return importlib.import_module(f"experiments.backbones.{name}")


def spec(name: str) -> BackboneSpec:
    """The facts about backbone ``name``; raises ConfigError for an unknown name."""
    return _module(name).SPEC


def build(cfg, input_shape: tuple[int, ...], num_classes: int, *, frozen_bn: bool = False):
    """The whole model for ``cfg.backbone``, taking raw 0-255 pixels.

    ``frozen_bn`` calls the base with ``training=False``, so its BatchNormalization layers
    stay in inference mode even once the base is unfrozen (transfer and fine-tuning).
    """
    import keras

    from experiments.augmentation import augmentation
    from experiments.backbones.weights import load_base

    module = _module(cfg.backbone.name)
    inputs = keras.Input(shape=input_shape, name="image")
    x = inputs
    augment = augmentation(cfg.dataset.augment)
    if augment is not None:
        x = augment(x)
    preprocess = keras.Sequential(module.preprocessing(), name="preprocess")
    preprocess.trainable = False
    x = preprocess(x)
    base = load_base(module, cfg.backbone.name, cfg.backbone.weights, input_shape)
    x = base(x, training=False) if frozen_bn else base(x)
    head = _head(base.output_shape, num_classes, cfg.backbone.dropout, module.SPEC)
    return keras.Model(inputs, head(x), name=cfg.backbone.name)


def _head(feature_shape, num_classes: int, dropout: float, spec: BackboneSpec):
    """Pool the feature map if there is one, [a hidden layer], drop out, classify."""
    import keras
    from keras import layers

    head = [keras.Input(shape=feature_shape[1:])]
    if len(feature_shape) == 4:
        head.append(layers.GlobalAveragePooling2D())
    if spec.head_units and spec.head_batchnorm:
        head += [
            layers.Dense(spec.head_units, use_bias=False),
            layers.BatchNormalization(),
            layers.Activation("relu"),
        ]
    elif spec.head_units:
        head.append(layers.Dense(spec.head_units, activation="relu"))
    if dropout > 0:
        head.append(layers.Dropout(dropout))
    # float32 even under a mixed precision policy: a stable softmax, float32 probabilities.
    head.append(
        layers.Dense(num_classes, activation="softmax", name="predictions", dtype="float32")
    )
    return keras.Sequential(head, name="head")
