"""What is exported and what it is checked on: the Keras model, its run, its test images.

The model is loaded in safe mode (``tracking.logged_models``) and copied into float32: a
run trained in ``mixed_bfloat16`` keeps float32 weights and computes in bfloat16, which
ONNX Runtime and LiteRT's float kernels do not; the copy has the same weights, and is the
reference every export is compared with. The images are the run's own test split, read
as the run read it (its logged ``config.yaml``), up to ``limit`` of them in a fixed draw.
A model folder without a run is checked on fixed random images, without accuracy.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
from omegaconf import OmegaConf

from experiments import models, uris
from experiments.data import registry as datasets
from experiments.errors import ConfigError
from experiments.tracking.logged_models import load_logged_model, source_run
from experiments.tracking.store import store_missing

log = logging.getLogger(__name__)

RANDOM_IMAGES = 1000  # the check of a model folder, which names no test images


@dataclass
class Source:
    uri: str
    model: object  # the float32 Keras model
    class_names: list[str]
    run_id: str | None  # the training run that logged it
    images: np.ndarray  # float32 raw pixels, (n, size, size, channels)
    labels: np.ndarray | None
    where: str  # what the images are, for the table
    sample: np.ndarray  # a few training images: int8 quantisation's representative data


def load(uri: str, tracking_uri: str, limit: int) -> Source:
    import mlflow

    if uris.is_model_uri(uri) and store_missing(tracking_uri):
        raise ConfigError("model", f"no MLflow store at {tracking_uri}; set mlflow.tracking_uri=")
    mlflow.set_tracking_uri(tracking_uri)
    keras_model, description = load_logged_model(uri, key="model")
    model = inference_model(float32_copy(keras_model))
    size, channels = model.input_shape[1], model.input_shape[3]
    count = int(model.output_shape[-1])
    names = (description.metadata or {}).get("class_names") or [f"class {i}" for i in range(count)]
    run_id = source_run(uri, mlflow.MlflowClient(tracking_uri))
    if run_id is None:
        rng = np.random.default_rng(0)
        images = rng.uniform(0, 255, (RANDOM_IMAGES, size, size, channels)).astype(np.float32)
        where = f"{RANDOM_IMAGES} random images (a model folder names no test images)"
        return Source(uri, model, names, None, images, None, where, images[:100])
    images, labels, sample, where = _test_split(mlflow.MlflowClient(tracking_uri), run_id, limit)
    if images.shape[1:] != (size, size, channels):
        raise ConfigError(
            "model",
            f"run {run_id}'s images are {images.shape[1:]}, the model "
            f"takes {(size, size, channels)}",
        )
    return Source(uri, model, names, run_id, images, labels, where, sample)


def _test_split(client, run_id: str, limit: int):
    """Up to ``limit`` of the run's test images (a fixed draw), their labels, and 100
    training images."""
    from mlflow.exceptions import MlflowException

    try:
        cfg = OmegaConf.load(client.download_artifacts(run_id, "config.yaml"))
    except (MlflowException, OSError):
        raise ConfigError(
            "model", f"run {run_id} has no config.yaml artifact: its test images are unknown"
        ) from None
    channels = models.spec(cfg.backbone.name).channels
    data = datasets.load(cfg.dataset, cfg.seed, channels=channels)
    count = len(data.y_test)
    rows = np.arange(count)
    if count > limit:
        rows = np.sort(np.random.default_rng(0).choice(count, limit, replace=False))
    images = np.asarray(data.x_test[rows], np.float32)  # arrays in memory or a disk view
    labels = np.asarray(data.y_test, np.int64)[rows]
    sample = np.asarray(data.x_train[np.arange(min(100, len(data.y_train)))], np.float32)
    where = f"{len(rows)} of run {run_id}'s {count} test images"
    return images, labels, sample, where


def inference_model(model):
    """``model`` called with ``training=False``, as the single graph every format exports.

    Keras' SavedModel and ONNX exports call the model without ``training``; a trained
    network's augmentation and dropout layers then run in the exported graph (a random
    flip per image: 53 % top-1 agreement in the first try of this command).
    """
    import keras

    image = keras.Input(model.input_shape[1:], name="image")
    return keras.Model(image, model(image, training=False), name=f"{model.name}_inference")


def float32_copy(model):
    """``model`` rebuilt with every layer in float32, holding the same weights."""
    import keras

    config = keras.saving.serialize_keras_object(model)
    if not _mixed(config):
        return model
    rebuilt = keras.saving.deserialize_keras_object(_float32(config), safe_mode=True)
    rebuilt.set_weights(model.get_weights())
    return rebuilt


def _mixed(node) -> bool:
    if isinstance(node, dict):
        if node.get("class_name") == "DTypePolicy":
            return node.get("config", {}).get("name", "").startswith("mixed_")
        return any(_mixed(value) for value in node.values())
    if isinstance(node, list):
        return any(_mixed(value) for value in node)
    return False


def _float32(node):
    if isinstance(node, dict):
        if node.get("class_name") == "DTypePolicy":
            return {**node, "config": {**node.get("config", {}), "name": "float32"}}
        return {key: _float32(value) for key, value in node.items()}
    if isinstance(node, list):
        return [_float32(value) for value in node]
    return node
