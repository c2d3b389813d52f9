"""MLflow's store: where runs go, opening it safely, the names and inputs of a run.

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

import numpy as np

from experiments.errors import TrackingError, first_line
from experiments.folders import ensure_writable
from experiments.tracking import health
from experiments.uris import redact, sqlite_path

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


def _artifact_location(uri: str, experiment_name: str) -> str | None:
    """For an embedded store, artifacts live in ``mlruns/`` beside the database file."""
    db = sqlite_path(uri)
    if db is None:
        return None  # a tracking server decides where artifacts go
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", experiment_name).strip("_") or "experiment"
    return (db.parent / "mlruns" / slug).as_uri()


# MLflow 3's earlier UIs choose an experiment's view by this tag (3.17's reads the address:
# see experiment_url below); it also tells any reader that these runs train models.
EXPERIMENT_KIND, MODEL_TRAINING = "mlflow.experimentKind", "custom_model_development"


def init_store(uri: str, experiment_name: str, wait_s: float = 0.0) -> str:
    """Open (creating if needed) the store and the experiment; return the experiment id.

    ``wait_s``: how long to wait for a tracking server that does not answer (a restart).
    """
    import mlflow
    from mlflow.exceptions import MlflowException

    db = sqlite_path(uri)
    if db is not None and not db.parent.is_dir():
        raise TrackingError(f"mlflow.tracking_uri={uri}: folder {db.parent} does not exist")
    if db is not None:  # the database and the artifacts beside it: writable, or stop now
        remedy = "point mlflow.tracking_uri to a writable folder"
        ensure_writable(db.parent, "mlflow.tracking_uri", remedy)
        ensure_writable(db.parent / "mlruns", "mlflow.tracking_uri", remedy)
    if uri.startswith(("http://", "https://")):
        check_server(uri, wait_s=wait_s)
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
        if EXPERIMENT_KIND not in experiment.tags or db is None:
            # A tag the experiment keeps; on a server, also the proof, before any training,
            # that this user may write to it (the same value: a user's own choice stays).
            kind = experiment.tags.get(EXPERIMENT_KIND, MODEL_TRAINING)
            client.set_experiment_tag(experiment.experiment_id, EXPERIMENT_KIND, kind)
        return experiment.experiment_id
    except MlflowException as exc:
        raise _store_error(exc, uri, experiment_name) from None


def _store_error(exc, uri: str, experiment_name: str) -> TrackingError:
    """The store's refusal in one sentence: a failed sign-in, a missing permission, or else."""
    from mlflow.utils.credentials import read_mlflow_creds

    user = read_mlflow_creds().username
    status = exc.get_http_status_code()
    if status == 401:
        who = f"the sign-in of user '{user}'" if user else "a client that did not sign in"
        return TrackingError(
            f"mlflow.tracking_uri={redact(uri)}: the server refused {who}: set "
            "MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD (or ~/.mlflow/credentials) "
            "to an account of that server"
        )
    if status == 403:
        return TrackingError(
            f"mlflow.experiment_name={experiment_name}: user '{user}' may not log runs to this "
            f"experiment of {redact(uri)}: ask its owner or the server's admin for EDIT "
            "permission on it, or choose an experiment of your own"
        )
    return TrackingError(f"cannot use the MLflow store {redact(uri)}: {first_line(exc)}")


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


def store_missing(uri: str) -> bool:
    """An embedded store whose database file does not exist: reading it would create it empty."""
    db = sqlite_path(uri)
    return db is not None and not db.is_file()


def check_server(uri: str, timeout: float = 10.0, wait_s: float = 0.0) -> None:
    """Fail in seconds, before training, when a tracking server does not answer.

    MLflow's own client retries with back-off for minutes before giving up. A server that
    does not answer is asked again for up to ``wait_s`` seconds: it may be restarting.
    """
    deadline = time.monotonic() + wait_s
    reason = health.unanswered(uri, timeout)
    if reason is not None and wait_s > 0:
        log.warning(
            "The tracking server %s does not answer (%s); waiting up to %.0f s for it "
            "(mlflow.outage_wait_s)",
            redact(uri),
            reason,
            wait_s,
        )
        while reason is not None and time.monotonic() < deadline:
            time.sleep(2.0)
            reason = health.unanswered(uri, timeout)
    if reason is not None:
        raise TrackingError(
            f"mlflow.tracking_uri={redact(uri)}: the tracking server does not answer ({reason}); "
            "start it, fix the URI, or leave mlflow.tracking_uri unset for the local store"
        )


def run_name(cfg, varying: list[str] = ()) -> str:
    """``mlflow.run_name``, else ``<backbone>-<phase>-<optimizer>-lr<lr>``, led by the values
    of the ``varying`` keys of its sweep (``lr=0.003 · seed=2 · compact_cnn-...``), so that
    a sweep's runs differ in the first characters the UI shows."""
    if cfg.mlflow.run_name:
        return cfg.mlflow.run_name
    lr = cfg.optimizer.lr if isinstance(cfg.optimizer.lr, str) else f"{cfg.optimizer.lr:g}"
    name = f"{cfg.backbone.name}-{cfg.phase.name}-{cfg.optimizer.name}-lr{lr}"
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


# MLflow 3.17's UI opens every experiment in its GenAI view (traces, "No data") unless the
# address asks for the model-training one; the experimentKind tag alone no longer does.
TRAINING_VIEW = "workflowType=machine_learning"
UI_ADDRESS = "http://127.0.0.1:5000"


def experiment_url(base: str, experiment_id: str) -> str:
    """The address of the experiment's page in MLflow's UI, on its training runs."""
    return f"{base.rstrip('/')}/#/experiments/{experiment_id}?{TRAINING_VIEW}"


def ui_command(uri: str, experiment_id: str) -> str:
    """How to browse ``uri``'s runs: the UI bound to the loopback interface, and the page."""
    if sqlite_path(uri) is not None:
        page = experiment_url(UI_ADDRESS, experiment_id)
        return f"mlflow ui --backend-store-uri {uri} --host 127.0.0.1 --port 5000, then open {page}"
    return f"open {experiment_url(uri, experiment_id)} in a browser"


def log_inputs(name: str, data, attempts: int = 5) -> None:
    """Record the train/validation/test arrays as the run's dataset inputs (name, digest, shape).

    The store checks whether an experiment already holds a dataset, then inserts it; two
    jobs of a sweep logging the same data at once can both insert, and the second gets a
    UNIQUE constraint error. The dataset is there by then, so trying again links to it.
    """
    import mlflow
    from mlflow.exceptions import MlflowException

    for part in ("train", "val", "test"):
        x, digest = getattr(data, f"x_{part}"), data.fingerprint(part)
        if digest is not None:  # in the image cache: its shape and type, no pixel read
            x = np.broadcast_to(np.zeros((), x.dtype), x.shape)
        dataset = mlflow.data.from_numpy(
            x, targets=getattr(data, f"y_{part}"), name=f"{name}-{part}", digest=digest
        )
        for attempt in range(attempts):
            try:
                mlflow.log_input(dataset, context=part)
                break
            except MlflowException as exc:
                if not _duplicate(exc) or attempt == attempts - 1:
                    raise
                time.sleep(0.2 * (attempt + 1))


def _duplicate(exc: Exception) -> bool:
    """An insert that lost a race: SQLite's and PostgreSQL's words for it."""
    text = str(exc)
    return "UNIQUE constraint failed" in text or "duplicate key value violates" in text
