"""MLflow: where runs go, what a run holds, and the Keras callback that logs each epoch.

MLflow is imported inside the functions: ``import mlflow`` alone costs about a second,
which ``--help`` and a rejected command line should not pay.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import time
from pathlib import Path
from urllib.parse import unquote, urlparse

from experiments.errors import TrackingError

log = logging.getLogger(__name__)


def resolve_tracking_uri(configured: str | None) -> str:
    """``mlflow.tracking_uri`` if set, else ``$MLFLOW_TRACKING_URI``, else ``./mlflow.db``.

    The default is absolute on purpose: MLflow 3 would otherwise fall back to a plain
    ``./mlruns`` file store whenever ``mlruns/<n>/meta.yaml`` exists.
    """
    if configured:
        return configured
    if os.environ.get("MLFLOW_TRACKING_URI"):
        return os.environ["MLFLOW_TRACKING_URI"]
    return f"sqlite:///{Path.cwd() / 'mlflow.db'}"


def sqlite_path(uri: str) -> Path | None:
    """The database file of a ``sqlite:///`` URI, or None for other stores."""
    if not uri.startswith("sqlite:"):
        return None
    return Path(unquote(urlparse(uri).path)).resolve()


def _artifact_location(uri: str, experiment_name: str) -> str | None:
    """For an embedded store, artifacts live in ``mlruns/`` beside the database file."""
    db = sqlite_path(uri)
    if db is None:
        return None  # a tracking server decides where artifacts go
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", experiment_name).strip("_") or "experiment"
    return (db.parent / "mlruns" / slug).as_uri()


# MLflow 3's UI opens an experiment in its GenAI view unless this tag says it trains models.
EXPERIMENT_KIND, MODEL_TRAINING = "mlflow.experimentKind", "custom_model_development"


def init_store(uri: str, experiment_name: str) -> str:
    """Open (creating if needed) the store and the experiment; return the experiment id."""
    import mlflow
    from mlflow.exceptions import MlflowException

    db = sqlite_path(uri)
    if db is not None and not db.parent.is_dir():
        raise TrackingError(f"mlflow.tracking_uri={uri}: folder {db.parent} does not exist")
    if db is not None:  # the database and the artifacts beside it: writable, or stop now
        from experiments.commands.outputs import ensure_writable

        remedy = "point mlflow.tracking_uri to a writable folder"
        ensure_writable(db.parent, "mlflow.tracking_uri", remedy)
        ensure_writable(db.parent / "mlruns", "mlflow.tracking_uri", remedy)
    if uri.startswith(("http://", "https://")):
        check_server(uri)
    mlflow.set_tracking_uri(uri)
    try:
        with _store_lock(db):
            client = mlflow.MlflowClient(uri)  # opens (and creates, migrates) the store
            experiment = client.get_experiment_by_name(experiment_name)
            if experiment is None:
                try:
                    return client.create_experiment(
                        experiment_name,
                        artifact_location=_artifact_location(uri, experiment_name),
                        tags={EXPERIMENT_KIND: MODEL_TRAINING},
                    )
                except MlflowException:  # created meanwhile by a process of another machine
                    experiment = client.get_experiment_by_name(experiment_name)
        if experiment.lifecycle_stage == "deleted":
            raise TrackingError(
                f"mlflow.experiment_name={experiment_name} is deleted in {uri}; "
                "restore it or choose another name"
            )
        if EXPERIMENT_KIND not in experiment.tags:  # one made before the tag; a user's choice stays
            client.set_experiment_tag(experiment.experiment_id, EXPERIMENT_KIND, MODEL_TRAINING)
        return experiment.experiment_id
    except MlflowException as exc:
        raise TrackingError(f"cannot use the MLflow store {redact(uri)}: {exc}") from exc


@contextlib.contextmanager
def _store_lock(db: Path | None):
    """Hold ``<db>.lock`` while opening an embedded store.

    The first process to open a fresh SQLite store creates and migrates its schema;
    several doing it at once corrupt it. Jobs started together (a sweep's, or commands
    in several terminals) take turns here; once the store exists this costs nothing.
    """
    if db is None:
        yield
        return
    import fcntl

    with open(db.with_name(db.name + ".lock"), "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def check_server(uri: str, timeout: float = 10.0) -> None:
    """Fail in seconds, before training, when a tracking server does not answer.

    MLflow's own client retries with back-off for minutes before giving up.
    """
    import base64
    import urllib.error
    import urllib.parse
    import urllib.request

    parts = urllib.parse.urlsplit(uri)
    netloc = parts.netloc.rpartition("@")[2]
    request = urllib.request.Request(f"{parts.scheme}://{netloc}{parts.path.rstrip('/')}/health")
    if parts.username is not None:  # user:password@ in the URI: send it as MLflow's client does
        user, password = (urllib.parse.unquote(v or "") for v in (parts.username, parts.password))
        token = f"{user}:{password}"
        request.add_header("Authorization", "Basic " + base64.b64encode(token.encode()).decode())
    try:
        urllib.request.urlopen(request, timeout=timeout).close()
    except urllib.error.HTTPError:
        return  # it answered: a proxy or an older server without /health
    except (OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise TrackingError(
            f"mlflow.tracking_uri={redact(uri)}: the tracking server does not answer ({reason}); "
            "start it, fix the URI, or leave mlflow.tracking_uri unset for the local store"
        ) from None


_CREDENTIALS = re.compile(r"(?<=://)[^/\s]*@")  # greedy: up to the authority's last @


def redact(text: str) -> str:
    """``text`` with any ``user:password@`` of a URI replaced, for params, tags and logs."""
    return _CREDENTIALS.sub("***@", text)


def run_name(cfg, varying: list[str] = ()) -> str:
    """``mlflow.run_name``, else ``<backbone>-<phase>-<optimizer>-lr<lr>``, led by the values
    of the ``varying`` keys of its sweep (``lr=0.003 · seed=2 · compact_cnn-...``), so that
    a sweep's runs differ in the first characters the UI shows."""
    if cfg.mlflow.run_name:
        return cfg.mlflow.run_name
    name = f"{cfg.backbone.name}-{cfg.phase.name}-{cfg.optimizer.name}-lr{cfg.optimizer.lr:g}"
    return " · ".join([*(_setting(cfg, key) for key in varying), name])


def _setting(cfg, key: str) -> str:
    """``lr=0.003`` for ``optimizer.lr``, ``vgg16`` for the group ``backbone``."""
    from omegaconf import OmegaConf

    if "." not in key:  # a config group: its option's name says it
        value = OmegaConf.select(cfg, f"{key}.name", default=None)
        if value is not None:
            return str(value)
    value = OmegaConf.select(cfg, key, default=None)
    shown = f"{value:.4g}" if isinstance(value, float) else str(value)
    return f"{key.rsplit('.', 1)[-1]}={shown}"


def default_tags(tags: dict[str, str]) -> dict[str, str]:
    """``tags`` with the user, source and git commit MLflow gives the runs it starts itself."""
    from mlflow.tracking.context.registry import resolve_tags

    return resolve_tags(tags)


def ui_command(uri: str) -> str:
    """The command that browses ``uri``'s runs, bound to the loopback interface."""
    if sqlite_path(uri) is not None:
        return f"mlflow ui --backend-store-uri {uri} --host 127.0.0.1 --port 5000"
    return f"open {uri} in a browser"


def stopwatch():
    """A Keras callback timing each epoch (training and validation); put it first in the
    list, so that the callbacks after it (checkpoints, logging) are not counted."""
    import keras

    class Stopwatch(keras.callbacks.Callback):
        seconds: float | None = None
        started = 0.0

        def on_epoch_begin(self, epoch, logs=None):
            self.started = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            self.seconds = time.perf_counter() - self.started

    return Stopwatch()


def epoch_recorder(epochs: list[dict], step_offset: int, extra: dict[str, float], stopwatch):
    """A Keras callback writing each epoch's metrics into ``epochs[step]`` (the run's axis):
    Keras' logs, ``epoch_time_s`` and ``extra``. Put it before the checkpoint and the logger,
    which save and send that entry."""
    import keras

    class EpochRecorder(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            metrics = {k: float(v) for k, v in (logs or {}).items()}
            if stopwatch.seconds is not None:
                metrics["epoch_time_s"] = stopwatch.seconds
            metrics.update(extra)
            step = step_offset + epoch
            del epochs[step:]  # an epoch trained again after a resume replaces its entry
            epochs.append(metrics)

    return EpochRecorder()


def curves(epochs: list[dict]) -> dict[str, list[float]]:
    """The per-epoch values of each metric every epoch has, e.g. ``{"val_loss": [...]}``."""
    keys = set.intersection(*(set(entry) for entry in epochs)) if epochs else set()
    return {key: [entry[key] for entry in epochs] for key in sorted(keys)}


def metrics_logger(box, epochs: list[dict]):
    """A Keras callback that logs the latest entry of ``epochs`` to the active run in one
    batched call, at its step.

    The call is asynchronous (over HTTP a synchronous one costs tens of milliseconds);
    ``box`` (an Outbox) keeps on disk what does not reach a server that went away.
    """
    import keras

    class MlflowMetrics(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            box.metrics(epochs[-1], step=len(epochs) - 1)

    return MlflowMetrics()


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

    from experiments.errors import ConfigError

    client = mlflow.MlflowClient(uri)
    if not _logged_model(client, run_id):
        raise ConfigError(key, f"the best run {run_id} logged no model (mlflow.log_model=false)")
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    try:
        version = mlflow.register_model(f"runs:/{run_id}/model", name).version
        client.set_registered_model_alias(name, CHAMPION, version)
    except MlflowException as exc:
        raise ConfigError(key, f"cannot register {name}: {str(exc).splitlines()[0]}") from exc
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

    from experiments.errors import ConfigError

    try:
        description = Model.load(uri)
        flavour = description.flavors.get("keras")
        if flavour is None or flavour.get("save_exported_model"):
            raise ConfigError(key, f"{uri} is not a Keras model saved by this project")
        model = mlflow.keras.load_model(uri, load_model_kwargs={"safe_mode": True})
    except (MlflowException, OSError, ValueError) as exc:
        reason = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else type(exc).__name__
        raise ConfigError(key, f"cannot load a model from {uri}: {reason}") from exc
    return model, description


def log_inputs(name: str, data, attempts: int = 5) -> None:
    """Record the train/validation/test arrays as the run's dataset inputs (name, digest, shape).

    The store checks whether an experiment already holds a dataset, then inserts it; two
    jobs of a sweep logging the same data at once can both insert, and the second gets a
    UNIQUE constraint error. The dataset is there by then, so trying again links to it.
    """
    import mlflow
    from mlflow.exceptions import MlflowException

    for part in ("train", "val", "test"):
        dataset = mlflow.data.from_numpy(
            getattr(data, f"x_{part}"), targets=getattr(data, f"y_{part}"), name=f"{name}-{part}"
        )
        for attempt in range(attempts):
            try:
                mlflow.log_input(dataset, context=part)
                break
            except MlflowException as exc:
                if "UNIQUE constraint failed" not in str(exc) or attempt == attempts - 1:
                    raise
                time.sleep(0.2 * (attempt + 1))
