"""Backbones: the table of their facts (``registry``), and the model builder.

Every backbone is one row of ``registry.BACKBONES``: its constructor, preprocessing, sizes,
ImageNet weights file and the layers fine-tuning keeps frozen. Every model built here is

    image -> [augment] -> preprocess -> base -> head

with those four parts as named sub-models, so phases can freeze the base, train the head
on cached features, and a logged model predicts from raw pixels with no outside code.
"""

from __future__ import annotations

from experiments.models import preprocessing
from experiments.models.augmentation import augmentation
from experiments.models.registry import BACKBONES, PREPROCESSING, BackboneSpec, names, spec
from experiments.models.weights import load_base

__all__ = ["BACKBONES", "PREPROCESSING", "BackboneSpec", "build", "names", "spec"]


def build(cfg, input_shape: tuple[int, ...], num_classes: int, *, frozen_bn=False, logged=None):
    """The whole model for ``cfg.backbone``, taking raw 0-255 pixels.

    ``frozen_bn`` calls the base with ``training=False``, so its BatchNormalization layers
    stay in inference mode even once the base is unfrozen (transfer and fine-tuning).
    ``logged``: the earlier run's model that ``backbone.weights=runs:/...`` names.
    """
    import keras

    row = spec(cfg.backbone.name)
    inputs = keras.Input(shape=input_shape, name="image")
    x = inputs
    augment = augmentation(cfg.dataset.augment)
    if augment is not None:
        x = augment(x)
    preprocess = keras.Sequential(preprocessing.layers(row.preprocessing), name="preprocess")
    preprocess.trainable = False
    x = preprocess(x)
    base = load_base(row, cfg.backbone.weights, input_shape, logged)
    x = base(x, training=False) if frozen_bn else base(x)
    head = _head(base.output_shape, num_classes, cfg.backbone.dropout, row)
    return keras.Model(inputs, head(x), name=cfg.backbone.name)


def _head(feature_shape, num_classes: int, dropout: float, row: BackboneSpec):
    """Pool the feature map if there is one, [a hidden layer], drop out, classify."""
    import keras
    from keras import layers

    head = [keras.Input(shape=feature_shape[1:])]
    if len(feature_shape) == 4:
        head.append(layers.GlobalAveragePooling2D())
    if row.head_units and row.head_batchnorm:
        head += [
            layers.Dense(row.head_units, use_bias=False),
            layers.BatchNormalization(),
            layers.Activation("relu"),
        ]
    elif row.head_units:
        head.append(layers.Dense(row.head_units, activation="relu"))
    if dropout > 0:
        head.append(layers.Dropout(dropout))
    # float32 even under a mixed precision policy: a stable softmax, float32 probabilities.
    head.append(
        layers.Dense(num_classes, activation="softmax", name="predictions", dtype="float32")
    )
    return keras.Sequential(head, name="head")
