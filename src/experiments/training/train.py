"""One training run, told top to bottom: config, data, model, phase, test, MLflow run."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import numpy as np
from omegaconf import DictConfig, OmegaConf

from experiments import models, uris
from experiments.data import registry as datasets
from experiments.errors import TrainingError
from experiments.folders import ensure_writable
from experiments.metrics import epoch_metric
from experiments.tracking import epoch_log, outbox, provenance, store, sweeps
from experiments.tracking.run_context import OpenRun, run_context
from experiments.training import (
    best_epoch,
    callbacks,
    checkpoints,
    cluster,
    hardware,
    phases,
    precision,
    record,
    resume,
    sweep_resume,
)
from experiments.training.settings import validate

log = logging.getLogger(__name__)


def run(cfg: DictConfig) -> float:
    """Train, evaluate and log one model; return the best value of ``cfg.metric``."""
    validate(cfg)
    _warn_if_the_frozen_base_is_random(cfg)
    uri, experiment_id = _open_store(cfg)
    resuming = restart = None
    if cfg.trainer.resume == sweep_resume.SWEEP:
        finished, restart = sweep_resume.plan(cfg, uri)
        if finished is not None:
            return finished
    if cfg.trainer.resume:
        cfg, resuming = resume.prepare(cfg, uri, provenance.overrides())
        validate(cfg)
    _ensure_weights_first(cfg, resuming)
    data = load_data(cfg)
    placement = hardware.place(cfg.trainer)
    chosen = choose_precision(cfg, data)
    set_seed(cfg.seed, cfg.trainer.deterministic)
    precision.apply(chosen.policy)
    phase_module = phases.module(cfg.phase.name)
    # Built before the run opens: missing weights or a bad init_from leave no run behind.
    with hardware.scope(placement.strategy):
        model = (
            resume.load_model(resuming.model_path) if resuming else phase_module.build(cfg, data)
        )
    runtime = {**placement.params(), **chosen.params()}
    try:
        restart = restart or (None if resuming else cluster.run_to_restart(uri))
        identity = _identity(cfg, uri, experiment_id, data, resuming, restart)
        with run_context(uri, **identity, outage_wait_s=cfg.mlflow.outage_wait_s) as mlflow_run:
            cluster.remember_run(mlflow_run.id)  # a SLURM job restarted later resumes this run
            record.inputs(cfg, data, runtime, mlflow_run.outbox, resuming)
            with hardware.scope(placement.strategy):
                trained = _train(cfg, data, phase_module, model, mlflow_run, resuming)
                if trained.pruned:  # abandoned by its search: not tested, nothing to ship
                    test = record.pruned(model, trained, mlflow_run.outbox)
                else:
                    test = record.results(cfg, data, model, trained, mlflow_run.outbox, runtime)
    finally:
        free_graph()
    if test:
        log.info("test_accuracy=%.4f test_loss=%.4f", test["accuracy"], test["loss"])
    log.info("Run %s FINISHED; artifacts in %s", mlflow_run.id, mlflow_run.artifact_uri)
    log.info("Browse the runs with: %s", store.ui_command(uris.redact(uri), experiment_id))
    return _best(trained.history, test, cfg.metric)


@dataclass
class Trained:
    history: dict[str, list[float]]  # every epoch of every stage, on the run's step axis
    tracker: best_epoch.Tracker  # where the best epoch was
    stages: list[str]  # "stage@first_step", in order
    seconds: float  # training time, without the test
    step: int  # the epoch the model's weights are from
    epochs_run: int  # epochs trained by this process (a resumed run's later ones)
    pruned: bool = False  # its Optuna search stopped it (search.trial)


def _train(cfg, data, phase_module, model, mlflow_run: OpenRun, resuming) -> Trained:
    """The phase's stages, each epoch checkpointed and logged; the best epoch's weights restored."""
    stages: list[str] = list(resuming.state.stages) if resuming else []
    folder = checkpoints.folder(mlflow_run.id) if cfg.trainer.checkpoints or resuming else None
    tracker = best_epoch.tracker_for(cfg.metric, folder, resuming.state.best if resuming else None)
    epochs: list[dict] = resuming.epochs if resuming else []  # the whole run's, by step
    sender = mlflow_run.outbox
    factory = callbacks.StageCallbacks(stages, folder, model, sender, tracker, epochs, cfg.trainer)
    before = len(epochs)
    started = time.perf_counter()
    phase_module.train(model, cfg, data, factory, resumed=resuming.state if resuming else None)
    seconds = time.perf_counter() - started
    history = epoch_log.curves(epochs)
    record.checkpoint_folder(sender, folder)
    _check_finite(history)
    record.stage_tags(sender, stages, tracker)
    log.info("Trained in %.1f s", seconds)
    step = best_epoch.model_step(model, tracker, history, folder, cfg.trainer.restore_best)
    pruned = factory.search_trial is not None and factory.search_trial.pruned_at is not None
    return Trained(history, tracker, stages, seconds, step, len(epochs) - before, pruned)


def _ensure_weights_first(cfg, resuming) -> None:
    """ImageNet weights that cannot be had: said before any image is decoded, not after."""
    from_run = resuming or cfg.phase.get("init_from")  # the base comes from a run's model
    if cfg.backbone.weights == "imagenet" and not from_run and cfg.dataset.get("image_size"):
        models.weights.ensure_imagenet(models.spec(cfg.backbone.name), cfg.dataset.image_size)


def _warn_if_the_frozen_base_is_random(cfg) -> None:
    if cfg.phase.name != "scratch" and cfg.backbone.weights is None:
        log.warning(
            "phase=%s with backbone.weights=null: the frozen base is random, so its features "
            "carry little; use pretrained weights (imagenet or runs:/<id>/model) or phase=scratch",
            cfg.phase.name,
        )


def _open_store(cfg) -> tuple[str, str]:
    """The tracking URI and the experiment's id, the store opened (and created) once."""
    uri = store.resolve_tracking_uri(cfg.mlflow.tracking_uri)
    outbox.use_short_retries(uri)
    # A sweep's job: its server answered the sweep a moment ago, so one that does not answer
    # now is restarting; wait for it. A command of its own fails in seconds.
    wait_s = cfg.mlflow.outage_wait_s if sweeps.in_multirun() else 0.0
    experiment_id = store.init_store(uri, cfg.mlflow.experiment_name, wait_s)
    if cfg.trainer.checkpoints or cfg.trainer.resume:
        remedy = "run from a writable folder or set trainer.checkpoints=false"
        ensure_writable(checkpoints.folder(""), "trainer.checkpoints", remedy)
    return uri, experiment_id


def load_data(cfg):
    channels = models.spec(cfg.backbone.name).channels  # RGB for a backbone that needs it
    data = datasets.load(cfg.dataset, cfg.seed, channels=channels)
    log.info(
        "Data: %d train / %d validation / %d test images of shape %s, %d classes",
        len(data.x_train),
        len(data.x_val),
        len(data.x_test),
        data.input_shape,
        data.num_classes,
    )
    return data


def _identity(cfg, uri: str, experiment_id: str, data, resuming, restart) -> dict:
    """``run_context``'s arguments: a new run's name and tags, or the resumed (or
    restarted) run's."""
    if restart:  # no checkpoint to resume from (a SLURM requeue, trainer.resume=sweep)
        tags, run_id = restart.tags, restart.run_id
        return {"tags": tags, "resume_id": run_id, "checkpoints": checkpoints.folder}
    if resuming:  # its command and overrides stay as first logged; where it resumed is added
        tags = {
            "resumed_at_step": str(resuming.state.next_step),
            **{f"resumed.{key}": value for key, value in provenance.tags().items()},
        }
        return {"tags": tags, "resume_id": resuming.run_id, "checkpoints": checkpoints.folder}
    parent = sweeps.parent_of_current_job() or {}
    tags = {
        "backbone": cfg.backbone.name,
        "phase": cfg.phase.name,
        "dataset": cfg.dataset.name,
        "data.skipped_files": str(data.skipped),
        # Which images the run was scored on: equal digests, comparable image by image.
        "data.test_digest": data.digest("test"),
        "data.val_digest": data.digest("val"),
        **provenance.tags(),
        **sweeps.parent_tag(uri, parent),
    }
    return {
        "tags": tags,
        "experiment_id": experiment_id,
        "run_name": store.run_name(cfg, parent.get("varying", [])),
        "checkpoints": checkpoints.folder,
    }


def _check_finite(history: dict[str, list[float]]) -> None:
    """Refuse a run whose loss blew up (TerminateOnNaN has already stopped its training)."""
    losses = history.get("loss", [])
    if not all(np.isfinite(losses)):
        raise TrainingError(
            f"the training loss became NaN or infinite in epoch {len(losses)}; "
            "lower optimizer.lr or check the data"
        )


def choose_precision(cfg, data) -> precision.Choice:
    """``trainer.precision``, with ``auto`` resolved on this machine (see ``precision``)."""
    shape, classes = tuple(data.input_shape), data.num_classes

    def random_model():  # only a micro-benchmark builds it; timing needs no weights
        bare = OmegaConf.merge(cfg, {"backbone": {"weights": None}})
        return models.build(bare, shape, classes)

    chosen = precision.resolve(
        cfg.trainer.precision,
        random_model,
        shape,
        min(cfg.trainer.batch_size, 128),
        f"{cfg.backbone.name}|{shape}|{classes}",
    )
    log.info("Precision: %s (%s)", chosen.policy, chosen.reason)
    return chosen


def set_seed(seed: int, deterministic: bool) -> None:
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(seed)
    if deterministic:
        tf.config.experimental.enable_op_determinism()


def free_graph() -> None:
    """Free the graph between jobs that share a process (Hydra's basic launcher)."""
    import keras

    keras.backend.clear_session()
    keras.mixed_precision.set_global_policy("float32")


def _best(history: dict[str, list[float]], test: dict, metric: str) -> float:
    """The best epoch's value of ``metric`` (lowest for losses), else the test value; an
    untested (pruned) run's is its best epoch's validation value of the same measure."""
    if not test:
        metric = epoch_metric(metric)
    if history.get(metric):
        values = history[metric]
        return float(min(values) if "loss" in metric else max(values))
    name = metric.removeprefix("test_")
    if name in test:
        return float(test[name])
    raise KeyError(f"metric {metric!r} was not recorded; known: {sorted(history)}")
