"""Where a base's starting weights come from: ImageNet, a file, an earlier run, or nowhere."""

from __future__ import annotations

import importlib
import os
from pathlib import Path

from experiments.errors import ConfigError, ExperimentError, first_line
from experiments.models.registry import BackboneSpec
from experiments.uris import is_model_uri


def keras_cache_dir() -> Path:
    """Where keras.applications keeps downloaded weights: ``$KERAS_HOME/models``."""
    return Path(os.environ.get("KERAS_HOME", Path.home() / ".keras")) / "models"


def load_base(row: BackboneSpec, weights: str | None, input_shape, logged=None):
    """The base of backbone ``row`` initialised from ``weights``.

    ``logged``: for ``weights=runs:/...`` (a model URI), that model, which the trainer
    loads from MLflow: models never reach into the tracking store themselves.
    """
    if weights == "imagenet":
        return _imagenet(row, input_shape)
    if is_model_uri(weights):
        if logged is None:
            raise ValueError(f"backbone.weights={weights}: pass the logged model it names")
        return _from_run(row, weights, logged, input_shape)
    base = construct(row, input_shape, None)
    if weights is not None:
        _load_file(base, Path(weights).expanduser(), row.name)
    return base


def construct(row: BackboneSpec, input_shape, weights: str | None):
    """``row``'s constructor called without its top, as a model named ``base``.

    The network is built under its own name and renamed afterwards: keras.applications
    derive weight file names (EfficientNet, ConvNeXt) and even the preprocessing
    (EfficientNetV2's B variants) from the model's name.
    """
    import keras

    module, function = row.constructor.rsplit(".", 1)
    constructor = getattr(importlib.import_module(module), function)
    net = constructor(include_top=False, weights=weights, input_shape=tuple(input_shape))
    if net.name == "base":
        return net
    # One tensor in, one out, as the base is called: lists of one would make Keras warn that
    # "the structure of inputs doesn't match" at every call of the whole model.
    return keras.Model(net.input, net.output, name="base")


def ensure_imagenet(row: BackboneSpec, size: int) -> None:
    """The ImageNet weights of ``row`` in the Keras cache, fetched now if they are not.

    Called before the data is loaded: a run whose weights cannot be had stops with its
    one-line error at once, not after minutes of decoding images.
    """
    if (keras_cache_dir() / row.imagenet_file(size)).is_file():
        return
    import keras

    _imagenet(row, (size, size, 3))  # downloads into the cache, or says why it cannot
    keras.backend.clear_session()


def _imagenet(row: BackboneSpec, input_shape):
    filename = row.imagenet_file(input_shape[0])
    cache = keras_cache_dir()
    try:
        return construct(row, input_shape, "imagenet")
    except Exception as exc:  # no network, a proxy, a corrupt cached file...
        reason = first_line(exc, 200)
        raise ExperimentError(
            f"backbone.weights=imagenet: the ImageNet weights of {row.name} ({filename}) are "
            f"not in the Keras cache {cache} and could not be downloaded ({reason}). Either copy "
            f"{filename} into {cache}/ (or set $KERAS_HOME to a folder whose models/ holds it), "
            "or start from random weights with backbone.weights=null"
        ) from exc


def _load_file(base, path: Path, name: str) -> None:
    try:
        base.load_weights(str(path))
    except Exception as exc:
        raise ConfigError(
            "backbone.weights", f"{path} does not hold weights for the {name} base: {exc}"
        ) from exc


def _from_run(row: BackboneSpec, uri: str, model, input_shape):
    """The base of an earlier run's model (same backbone, same input shape), trainable.

    The run's base itself, not its weights copied into a new one: a base built from
    ImageNet weights can hold layers a random one lacks (EfficientNet's input scaling).
    Its layers keep the precision policy the earlier run used.
    """
    try:
        base = model.get_layer("base")
    except ValueError:
        raise ConfigError(
            "backbone.weights", f"{uri} is not a model of this project (it has no 'base' part)"
        ) from None
    if model.name != row.name or tuple(base.input_shape[1:]) != tuple(input_shape):
        raise ConfigError(
            "backbone.weights",
            f"the base of {uri} ({model.name}, input {base.input_shape[1:]}) does not fit "
            f"{row.name} with input {tuple(input_shape)}: use the same backbone and image size",
        )
    base.trainable = True  # every layer, as in a new base: the phase decides what trains
    return base
