"""Where a base's starting weights come from: ImageNet, a file, an earlier run, or nowhere."""

from __future__ import annotations

import os
from pathlib import Path
from types import ModuleType

from experiments.config import is_model_uri
from experiments.errors import ConfigError, ExperimentError


def keras_cache_dir() -> Path:
    """Where keras.applications keeps downloaded weights: ``$KERAS_HOME/models``."""
    return Path(os.environ.get("KERAS_HOME", Path.home() / ".keras")) / "models"


def load_base(module: ModuleType, name: str, weights: str | None, input_shape):
    """The base of backbone ``name`` initialised from ``weights``."""
    if weights is None:
        return module.base(input_shape, None)
    if weights == "imagenet":
        return _imagenet(module, name, input_shape)
    base = module.base(input_shape, None)
    if is_model_uri(weights):
        _copy_from_run(base, weights, name)
    else:
        _load_file(base, Path(weights).expanduser(), name)
    return base


def _imagenet(module: ModuleType, name: str, input_shape):
    filename = module.weights_file(input_shape[0])
    cache = keras_cache_dir()
    try:
        return module.base(input_shape, "imagenet")
    except Exception as exc:  # no network, a proxy, a corrupt cached file...
        reason = str(exc).splitlines()[0][:200]
        raise ExperimentError(
            f"backbone.weights=imagenet: the ImageNet weights of {name} ({filename}) are not "
            f"in the Keras cache {cache} and could not be downloaded ({reason}). Either copy "
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


def _copy_from_run(base, uri: str, name: str) -> None:
    """Start from the base of an earlier run's model (same backbone, same input shape)."""
    from experiments.tracking import load_logged_model

    model, _ = load_logged_model(uri, key="backbone.weights")
    try:
        source = model.get_layer("base")
    except ValueError:
        raise ConfigError(
            "backbone.weights", f"{uri} is not a model of this project (it has no 'base' part)"
        ) from None
    theirs, ours = source.get_weights(), base.get_weights()
    shapes_match = len(theirs) == len(ours) and all(
        a.shape == b.shape for a, b in zip(theirs, ours, strict=True)
    )
    if not shapes_match:
        raise ConfigError(
            "backbone.weights",
            f"the base of {uri} ({model.name}, input {model.input_shape[1:]}) does not fit "
            f"{name} with input {base.input_shape[1:]}: use the same backbone and image size",
        )
    base.set_weights(theirs)
