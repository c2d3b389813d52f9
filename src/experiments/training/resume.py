"""``trainer.resume=<run_id>``: continue an interrupted run from its last checkpoint.

The run keeps its configuration (read back from its ``config.yaml`` artifact); only
``trainer.*``, ``mlflow.*`` and ``cost.*`` settings given on the command line may change, e.g.
``trainer.epochs`` to train longer. Training continues in the same MLflow run, on the
same step axis, from the checkpoint in ``checkpoints/<run_id>/`` (or the one logged as
the run's artifact when that folder is gone).
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from experiments.config.schema import flatten
from experiments.errors import ConfigError
from experiments.training import checkpoints
from experiments.training.best_epoch import BEST_STATE

log = logging.getLogger(__name__)

KEY = "trainer.resume"
CHANGEABLE = ("trainer.", "mlflow.", "cost.")  # what a resumed run may change
CURVES = ("loss", "accuracy", "val_loss", "val_accuracy")


@dataclass
class Resume:
    run_id: str
    model_path: Path  # the checkpoint to load
    state: checkpoints.State
    epochs: list[dict]  # the metrics of each epoch before ``state.next_step``, by step


def prepare(cfg: DictConfig, uri: str, overrides: list[str]) -> tuple[DictConfig, Resume]:
    """The run's own configuration with the allowed ``overrides``, and where it stopped."""
    import mlflow
    from mlflow.exceptions import MlflowException

    run_id = cfg.trainer.resume
    client = mlflow.MlflowClient(uri)
    try:
        run = client.get_run(run_id)
    except MlflowException:
        raise ConfigError(KEY, f"no run {run_id} in this tracking store") from None
    if run.info.status == "FINISHED":
        raise ConfigError(KEY, f"run {run_id} already FINISHED; nothing to resume")
    try:
        logged = OmegaConf.load(client.download_artifacts(run_id, "config.yaml"))
    except (MlflowException, OSError):
        raise ConfigError(KEY, f"run {run_id} has no config.yaml artifact to resume from") from None
    resumed = _merge(cfg, logged, overrides, run_id)

    folder = checkpoints.folder(run_id)
    state = checkpoints.read_state(folder)
    if state is None:
        state = fetch_logged_checkpoint(client, run_id, folder)
    if state is None:
        raise ConfigError(
            KEY,
            f"run {run_id} has no checkpoint: neither {folder}/{checkpoints.LAST} with "
            f"{checkpoints.STATE} nor the artifact checkpoints/{checkpoints.LAST}",
        )
    epochs = _epochs(client, run_id, state)
    _send_missing(client, run_id, epochs)
    log.info(
        "Resuming run %s: stage %s after %d epoch(s), at step %d, from %s",
        run_id,
        state.stage,
        state.epochs_done,
        state.next_step,
        folder / checkpoints.LAST,
    )
    return resumed, Resume(run_id, folder / checkpoints.LAST, state, epochs)


def _merge(cfg: DictConfig, logged: DictConfig, overrides: list[str], run_id: str) -> DictConfig:
    """``logged`` over ``cfg``, then the command line's trainer/mlflow overrides on top.

    Any other override that would change the run's configuration is refused: a resumed
    run must go on training the model it started.
    """
    resumed = OmegaConf.merge(cfg, logged)
    for override in overrides:
        key = override.lstrip("+~").split("=", 1)[0]
        if key.startswith("hydra.") or key == KEY:
            continue
        if key.startswith(CHANGEABLE) or key in ("trainer", "mlflow", "cost"):
            OmegaConf.update(resumed, key, OmegaConf.select(cfg, key), merge=False)
            continue
        path = f"{key}.name" if "." not in key else key
        wanted, had = OmegaConf.select(cfg, path), OmegaConf.select(logged, path)
        if wanted != had:
            raise ConfigError(
                KEY,
                f"run {run_id} was trained with {path}={had}, this command asks for {wanted}; "
                "a resumed run keeps its configuration "
                "(only trainer.*, mlflow.* and cost.* may change)",
            )
    resumed.trainer.resume = run_id
    resumed.mlflow.tracking_uri = cfg.mlflow.tracking_uri  # the logged one is redacted
    return resumed


def fetch_logged_checkpoint(client, run_id: str, folder: Path) -> checkpoints.State | None:
    """Download the checkpoint the run logged (its folder on disk is gone)."""
    from mlflow.exceptions import MlflowException

    with tempfile.TemporaryDirectory() as tmp:
        try:
            fetched = Path(client.download_artifacts(run_id, "checkpoints", tmp))
        except (MlflowException, OSError):
            return None
        if checkpoints.read_state(fetched) is None:
            return None
        folder.mkdir(parents=True, exist_ok=True)
        for name in (checkpoints.LAST, checkpoints.STATE, checkpoints.BEST, BEST_STATE):
            if (fetched / name).is_file():
                shutil.copy2(fetched / name, folder / name)
    log.info("Fetched the checkpoint logged by run %s into %s", run_id, folder)
    return checkpoints.read_state(folder)


def _epochs(client, run_id: str, state: checkpoints.State) -> list[dict]:
    """Each epoch's metrics up to the checkpoint: as the checkpoint recorded them, or as
    logged (a checkpoint written before checkpoints recorded them)."""
    if len(state.epochs) >= state.next_step:
        return [dict(entry) for entry in state.epochs[: state.next_step]]
    epochs: list[dict] = [{} for _ in range(state.next_step)]
    for key in (*CURVES, "epoch_time_s", "stage"):
        for point in client.get_metric_history(run_id, key):
            if point.step < state.next_step:
                epochs[point.step][key] = point.value
    return epochs


def _send_missing(client, run_id: str, epochs: list[dict]) -> None:
    """Log the checkpointed epochs that never reached the store (a kill -9 during the
    asynchronous send), so that every step has its value once."""
    import time

    from mlflow.entities import Metric

    now = int(time.time() * 1000)
    missing = []
    for key in sorted({key for entry in epochs for key in entry}):
        logged = {point.step for point in client.get_metric_history(run_id, key)}
        missing += [
            Metric(key, entry[key], now, step)
            for step, entry in enumerate(epochs)
            if key in entry and step not in logged
        ]
    if missing:
        log.info("Logging %d epoch metric(s) that the interrupted run did not send", len(missing))
        client.log_batch(run_id, metrics=missing)


def load_model(path: Path):
    """The checkpointed model, with its optimizer state when it was compiled; safe mode on."""
    import keras

    return keras.saving.load_model(path, safe_mode=True)


def log_changed_settings(cfg) -> None:
    """A resumed run's params stay as first logged; what the resume changed becomes tags."""
    import mlflow

    logged = mlflow.get_run(mlflow.active_run().info.run_id).data.params
    changed = {
        f"resumed.{key}": str(value)[:5000]
        for key, value in flatten(cfg).items()
        if key in logged and logged[key] != str(value)
    }
    if changed:
        mlflow.set_tags(changed)
