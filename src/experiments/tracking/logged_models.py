"""Models in MLflow: logging a Keras model, loading one back safely, registering a champion,
and the run behind a model URI."""

from __future__ import annotations

import logging

from experiments.errors import ConfigError, first_line

log = logging.getLogger(__name__)


def log_keras_model(model, class_names: list[str], step: int = 0) -> str:
    """Log ``model`` under the artifact name ``model``; return its ``runs:/`` URI.

    ``step``: the epoch its weights come from; MLflow links that step's metrics to it.
    """
    import keras
    import mlflow
    import numpy as np
    import tensorflow as tf
    from mlflow.models import ModelSignature
    from mlflow.types.schema import Schema, TensorSpec

    signature = ModelSignature(
        inputs=Schema([TensorSpec(np.dtype("float32"), (-1, *model.input_shape[1:]))]),
        outputs=Schema([TensorSpec(np.dtype("float32"), (-1, len(class_names)))]),
    )
    # Explicit requirements: inferring them imports the model in a subprocess (~4 s).
    requirements = [
        f"mlflow=={mlflow.__version__}",
        f"tensorflow=={tf.__version__}",
        f"keras=={keras.__version__}",
    ]
    info = mlflow.keras.log_model(
        model,
        name="model",
        signature=signature,
        pip_requirements=requirements,
        metadata={"class_names": list(class_names)},
        step=step,
    )
    return f"runs:/{info.run_id}/model"


CHAMPION = "champion"


def register_champion(uri: str, run_id: str, name: str, key: str) -> int:
    """Register run ``run_id``'s model as a new version of ``name`` in the Model Registry,
    with the alias ``champion``; return the version. ``key`` names the setting in errors."""
    import mlflow
    from mlflow.exceptions import MlflowException

    client = mlflow.MlflowClient(uri, registry_uri=uri)  # not a registry another caller set
    if not _logged_model(client, run_id):
        raise ConfigError(key, f"the best run {run_id} logged no model (mlflow.log_model=false)")
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    try:
        version = mlflow.register_model(f"runs:/{run_id}/model", name).version
        client.set_registered_model_alias(name, CHAMPION, version)
    except MlflowException as exc:
        raise ConfigError(key, f"cannot register {name}: {first_line(exc)}") from exc
    log.info("Registered run %s's model as %s version %s (@%s)", run_id, name, version, CHAMPION)
    return int(version)


def _logged_model(client, run_id: str) -> bool:
    experiment_id = client.get_run(run_id).info.experiment_id
    models = client.search_logged_models(
        [experiment_id], filter_string=f"source_run_id = '{run_id}'"
    )
    return bool(models)


def load_logged_model(uri: str, key: str):
    """The Keras model at ``uri`` (a model URI or a folder) and its MLmodel description.

    Only the keras flavour saved as a ``.keras`` file is accepted, and it is loaded with
    Keras' safe mode on: a model file from elsewhere cannot run code on this machine.
    """
    import mlflow
    from mlflow.exceptions import MlflowException
    from mlflow.models import Model

    try:
        description = Model.load(uri)
        flavour = description.flavors.get("keras")
        if flavour is None or flavour.get("save_exported_model"):
            raise ConfigError(key, f"{uri} is not a Keras model saved by this project")
        model = mlflow.keras.load_model(uri, load_model_kwargs={"safe_mode": True})
    except (MlflowException, OSError, ValueError) as exc:
        reason = first_line(exc)
        raise ConfigError(key, f"cannot load a model from {uri}: {reason}") from exc
    return model, description


def source_run(uri: str, client) -> str | None:
    """The id of the training run behind ``uri`` (None for a model folder)."""
    if uri.startswith("runs:/"):
        return uri.removeprefix("runs:/").split("/")[0]
    if not uri.startswith("models:/"):
        return None
    name, sep, alias = uri.removeprefix("models:/").partition("@")
    if sep:
        return client.get_model_version_by_alias(name, alias).run_id
    name, _, version = name.partition("/")
    return client.get_model_version(name, version).run_id
