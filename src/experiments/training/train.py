"""One training run, told top to bottom: config, data, model, phase, test, MLflow run."""

from __future__ import annotations

import contextlib
import json
import logging
import signal
import threading
import time
from pathlib import Path

import numpy as np
from omegaconf import DictConfig, OmegaConf

from experiments import data as datasets
from experiments import models as backbones
from experiments import tracking
from experiments.commands import outputs, sweep
from experiments.config import flatten, validate
from experiments.data import stream
from experiments.errors import TrackingError, TrainingError
from experiments.metrics import epoch_metric
from experiments.reporting import reports
from experiments.tracking import outbox, provenance
from experiments.training import best_epoch, checkpoints, cluster, phases, precision, resume
from experiments.training import hardware as runtime

log = logging.getLogger(__name__)


def run(cfg: DictConfig) -> float:
    """Train, evaluate and log one model; return the best value of ``cfg.metric``."""
    validate(cfg)
    if cfg.phase.name != "scratch" and cfg.backbone.weights is None:
        log.warning(
            "phase=%s with backbone.weights=null: the frozen base is random, so its features "
            "carry little; use pretrained weights (imagenet or runs:/<id>/model) or phase=scratch",
            cfg.phase.name,
        )
    uri = tracking.resolve_tracking_uri(cfg.mlflow.tracking_uri)
    outbox.use_short_retries(uri)
    experiment_id = tracking.init_store(uri, cfg.mlflow.experiment_name)
    if cfg.trainer.checkpoints or cfg.trainer.resume:
        outputs.ensure_writable(
            checkpoints.folder(""), "trainer.checkpoints",
            "run from a writable folder or set trainer.checkpoints=false",
        )  # fmt: skip
    resuming = None
    if cfg.trainer.resume:
        cfg, resuming = resume.prepare(cfg, uri, provenance.overrides())
        validate(cfg)
    data = datasets.load(cfg.dataset, cfg.seed, channels=backbones.spec(cfg.backbone.name).channels)
    log.info(
        "Data: %d train / %d validation / %d test images of shape %s, %d classes",
        len(data.x_train), len(data.x_val), len(data.x_test), data.input_shape, data.num_classes,
    )  # fmt: skip

    threads = runtime.configure_threads(cfg.trainer.threads, cfg.trainer.logical_cpus)
    distribution = runtime.strategy(cfg.trainer.strategy)
    replicas = distribution.num_replicas_in_sync if distribution else 1
    log.info("TensorFlow: %d intra-op threads, %d replica(s)", threads, replicas)
    # The model is built before the run opens: missing weights or a bad init_from fail
    # here, leaving no run behind.
    chosen = _precision(cfg, data)
    _seed(cfg.seed, cfg.trainer.deterministic)
    precision.apply(chosen.policy)
    phase = phases.module(cfg.phase.name)
    with runtime.scope(distribution):
        model = resume.load_model(resuming.model_path) if resuming else phase.build(cfg, data)

    import mlflow

    parent = sweep.parent_of_current_job()
    tags = {
        "backbone": cfg.backbone.name, "phase": cfg.phase.name, "dataset": cfg.dataset.name,
        "data.skipped_files": str(data.skipped), **provenance.tags(), **_parent_tag(uri, parent),
    }  # fmt: skip
    if resuming:  # the same run, its tags updated: where and how it was resumed
        tags = {
            "resumed_at_step": str(resuming.state.next_step),
            **{f"resumed.{key}": value for key, value in provenance.tags().items()},
        }  # the original command and overrides stay as they were
        opened = mlflow.start_run(run_id=resuming.run_id, tags=tags)
    else:
        opened = mlflow.start_run(
            experiment_id=experiment_id,
            run_name=tracking.run_name(cfg, (parent or {}).get("varying", [])),
            tags=tags,
        )
    cluster.remember_run(opened.info.run_id)  # a SLURM job restarted later resumes this run
    shown_uri = tracking.redact(uri)
    box = outbox.Outbox(Path.cwd() / "unsent" / opened.info.run_id, shown_uri)
    failure: BaseException | None = None
    try:
        with (
            opened as active,
            _sigterm_interrupts(),
        ):
            log.info(
                "MLflow run %s (%s) in %s", active.info.run_name, active.info.run_id, shown_uri
            )
            if not resuming:
                params = {
                    "runtime.threads": threads,
                    "runtime.replicas": replicas,
                    "runtime.precision": chosen.policy,
                    "runtime.precision_reason": chosen.reason,
                }
                box.send("params", lambda: mlflow.log_params(params),
                         outbox.keep_json("params.json", params))  # fmt: skip
            try:
                with runtime.scope(distribution):
                    history, test = _train_and_log(cfg, data, phase, model, box, resuming)
            except BaseException as exc:
                failure = exc
                _end_unfinished(exc, box)
                raise
            box.settle()
    except Exception as exc:
        if failure is not None and exc is not failure:
            raise failure from None  # not the server's failure to record its end
        if failure is not None or not (box.offline and outbox.is_unreachable(exc)):
            raise
        log.debug("the run's end could not be recorded: %s", exc)
    finally:
        _release()
    if box.offline:
        _report_unsent(box, "FINISHED")
    log.info("test_accuracy=%.4f test_loss=%.4f", test["accuracy"], test["loss"])
    log.info("Run %s FINISHED; artifacts in %s", active.info.run_id, active.info.artifact_uri)
    log.info("Browse the runs with: %s", tracking.ui_command(shown_uri))
    return _best(history, test, cfg.metric)


def _train_and_log(cfg, data, phase, model, box, resuming=None) -> tuple[dict, dict]:
    """Everything inside the run: inputs, training, test metrics, reports, the model.

    Every call to the store goes through ``box``: if a tracking server stops answering,
    training goes on and what could not be sent is kept on disk.
    """
    import mlflow

    if resuming:
        _log_resumed_settings(cfg)
    else:
        params = {
            **flatten(cfg),
            "data.train_size": len(data.x_train), "data.val_size": len(data.x_val),
            "data.test_size": len(data.x_test), "data.source": data.source,
            "data.classes": ",".join(data.class_names)[:1000],  # the whole list: class_names.json
        }  # fmt: skip
        box.send("params", lambda: mlflow.log_params(params),
                 outbox.keep_json("params.json", params))  # fmt: skip
        classes = {"class_names": data.class_names}
        box.send(
            "class_names.json", lambda: mlflow.log_dict(classes, "class_names.json"),
            outbox.keep_file("class_names.json", lambda p: p.write_text(json.dumps(classes))),
        )  # fmt: skip
        box.send("dataset inputs", lambda: tracking.log_inputs(cfg.dataset.name, data),
                 lambda folder: None)  # fmt: skip
        text = tracking.redact(OmegaConf.to_yaml(cfg, resolve=True))
        box.send("config.yaml", lambda: mlflow.log_text(text, "config.yaml"),
                 outbox.keep_file("config.yaml", lambda p: p.write_text(text)))  # fmt: skip

    stages: list[str] = list(resuming.state.stages) if resuming else []
    run_id = mlflow.active_run().info.run_id
    folder = checkpoints.folder(run_id) if cfg.trainer.checkpoints or resuming else None
    tracker = _tracker(cfg, folder, resuming)
    epochs: list[dict] = resuming.epochs if resuming else []  # the whole run's, by step
    callbacks = _callback_factory(stages, folder, model, box, tracker, epochs, cfg.trainer)
    started = time.perf_counter()
    phase.train(model, cfg, data, callbacks, start=resuming.state if resuming else None)
    train_time = time.perf_counter() - started
    history = tracking.curves(epochs)
    box.settle()
    if folder is not None and folder.is_dir():
        box.send("checkpoints", lambda: mlflow.log_artifacts(str(folder), "checkpoints"),
                 outbox.keep_tree(folder, "checkpoints"))  # fmt: skip
    _check_finite(history)
    box.send("tags", lambda: mlflow.set_tags(_stage_tags(stages, tracker)),
             outbox.keep_json("tags.json", _stage_tags(stages, tracker)))  # fmt: skip
    log.info("Trained in %.1f s", train_time)
    step = _model_step(cfg, model, tracker, history, folder)

    batch = max(cfg.trainer.batch_size, 64)
    test = stream.evaluate(model, data.x_test, data.y_test, batch)
    probs = stream.predict(model, data.x_test, batch)
    trainable = int(sum(np.prod(w.shape) for w in model.trainable_weights))
    metrics = {
        "test_loss": float(test["loss"]), "test_accuracy": float(test["accuracy"]),
        "train_time_s": train_time, "total_params": model.count_params(),
        "trainable_params": trainable, **_selection_metrics(history, tracker),
    }  # fmt: skip
    box.metrics(metrics, step=step)  # at the model's step: MLflow shows them with the model
    _log_reports(cfg, data, probs, history, box, stages)
    if cfg.mlflow.log_model:
        box.send(
            "the model (model.keras)",
            lambda: tracking.log_keras_model(model, data.class_names, step=step),
            lambda folder: model.save(folder / "model.keras"),
        )  # fmt: skip
    return history, test


def _tracker(cfg, folder: Path | None, resuming) -> best_epoch.Tracker:
    """The best epoch of ``cfg.metric`` so far: none, or where the resumed run left it."""
    metric = epoch_metric(cfg.metric)
    if not resuming:
        return best_epoch.Tracker(metric)
    return best_epoch.resumed(metric, folder, resuming.state.best)


def _model_step(cfg, model, tracker, history: dict, folder: Path | None) -> int:
    """Restore the best epoch's weights (``trainer.restore_best``); the step the model is from."""
    last_step = len(history.get("loss", [])) - 1
    if cfg.trainer.restore_best and best_epoch.restore(model, tracker, last_step, folder):
        return tracker.step
    return max(last_step, 0)


def _selection_metrics(history: dict, tracker) -> dict[str, float]:
    """The best epochs of the validation curves, and where the run's ``metric`` peaked."""
    metrics: dict[str, float] = {}
    if history.get("val_accuracy"):
        metrics["best_val_accuracy"] = max(history["val_accuracy"])
    if history.get("val_loss"):
        metrics["best_val_loss"] = min(history["val_loss"])
    if tracker.step is not None:
        metrics["best_epoch"] = tracker.step
    if tracker.stopped_step is not None:
        metrics["stopped_epoch"] = tracker.stopped_step
    return metrics


def _stage_tags(stages: list[str], tracker) -> dict[str, str]:
    tags = {"stages": ",".join(stages)}
    if tracker.stage is not None:
        tags["best_epoch_stage"] = tracker.stage
    return tags


def _parent_tag(uri: str, parent: dict | None) -> dict[str, str]:
    """In a sweep, the tag that makes this run a child of the sweep's parent run."""
    if parent is None:
        return {}
    if parent["tracking_uri"] != uri:
        log.warning(
            "This job tracks to %s, its sweep to %s: not linked", uri, parent["tracking_uri"]
        )
        return {}
    return {"mlflow.parentRunId": parent["run_id"]}


def _log_resumed_settings(cfg) -> None:
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


def _callback_factory(stages: list[str], folder: Path | None, model, box, tracker, epochs, trainer):
    """Callbacks for each stage of a phase; stage k's epochs log ``stage=k`` on the shared axis.

    ``tracker`` follows the best epoch across stages (and stops a stage early when asked).
    With ``folder``, the whole ``model`` (even while only its head trains on cached
    features) is saved after every epoch and at the run's best epoch, with where training
    stood, so a crash leaves the latest on disk and the run can resume.
    """
    import keras

    def callbacks(stage: str, first_step: int) -> list:
        entry = f"{stage}@{first_step}"
        if entry not in stages:  # a resumed stage is already listed
            stages.append(entry)
        timer = tracking.stopwatch()  # first: the epoch's time without saving and logging
        extra = {"stage": stages.index(entry)}
        found = [
            timer,
            keras.callbacks.TerminateOnNaN(),  # stop within the batch
            tracking.epoch_recorder(epochs, first_step, extra, timer),
            best_epoch.callback(tracker, model, stage, first_step, trainer, folder),
        ]
        if folder is not None:  # before the metrics: an epoch logged is an epoch saved
            found.append(
                checkpoints.callback(folder, model, stage, first_step, stages, tracker, epochs)
            )
        found.append(tracking.metrics_logger(box, epochs))
        return found

    return callbacks


def _check_finite(history: dict[str, list[float]]) -> None:
    """Refuse a run whose loss blew up (TerminateOnNaN has already stopped its training)."""
    losses = history.get("loss", [])
    if not all(np.isfinite(losses)):
        raise TrainingError(
            f"the training loss became NaN or infinite in epoch {len(losses)}; "
            "lower optimizer.lr or check the data"
        )


@contextlib.contextmanager
def _sigterm_interrupts():
    """Turn SIGTERM into KeyboardInterrupt, so a killed job ends its run as KILLED."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _end_unfinished(exc: BaseException, box) -> None:
    """Record why the run stopped; an interruption ends it KILLED rather than FAILED."""
    import mlflow

    reason = f"{type(exc).__name__}: {exc}"[:500]
    try:
        box.settle()
        box.send("tags", lambda: mlflow.set_tag("failure_reason", reason),
                 outbox.keep_json("tags.json", {"failure_reason": reason}))  # fmt: skip
        mlflow.flush_async_logging()
    except Exception:  # the store itself may be what failed
        log.warning("could not record the failure reason in MLflow: %s", reason)
    folder = checkpoints.folder(mlflow.active_run().info.run_id)
    if folder.is_dir():
        log.warning("The latest checkpoints of this run are in %s", folder)
        try:
            box.send("checkpoints", lambda: mlflow.log_artifacts(str(folder), "checkpoints"),
                     lambda unsent: None)  # fmt: skip
        except Exception:
            log.warning("could not log the checkpoints to MLflow; they stay in %s", folder)
    status = "KILLED" if isinstance(exc, KeyboardInterrupt) else "FAILED"
    if box.offline:
        _report_unsent(box, status)
    if status == "KILLED":
        log.warning("Interrupted: the run ends KILLED; what was logged so far stays")
        with contextlib.suppress(Exception):  # a server that went away cannot be told
            mlflow.end_run("KILLED")


def _report_unsent(box, status: str) -> None:
    """Say exactly what did not reach the tracking server and where it is; exit non-zero."""
    box.kept.append(f"the run's end ({status})")
    outbox.keep_json("status.json", {"status": status, "reason": box.reason})(box.folder)
    log.error("The tracking server went away during the run (%s)", box.reason)
    log.error("%s", box.summary())
    if status == "FINISHED":
        raise TrackingError(
            f"training finished, but the tracking server stopped answering; {box.summary()}"
        )


def _precision(cfg, data) -> precision.Choice:
    """``trainer.precision``, with ``auto`` resolved on this machine (see ``precision``)."""
    shape, classes = tuple(data.input_shape), data.num_classes

    def random_model():  # only a micro-benchmark builds it; timing needs no weights
        bare = OmegaConf.merge(cfg, {"backbone": {"weights": None}})
        return backbones.build(bare, shape, classes)

    chosen = precision.resolve(
        cfg.trainer.precision,
        random_model,
        shape,
        min(cfg.trainer.batch_size, 128),
        f"{cfg.backbone.name}|{shape}|{classes}",
    )
    log.info("Precision: %s (%s)", chosen.policy, chosen.reason)
    return chosen


def _seed(seed: int, deterministic: bool) -> None:
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(seed)
    if deterministic:
        tf.config.experimental.enable_op_determinism()


def _release() -> None:
    """Free the graph between jobs that share a process (Hydra's basic launcher)."""
    import keras

    keras.backend.clear_session()
    keras.mixed_precision.set_global_policy("float32")


def _log_reports(cfg, data, probs: np.ndarray, history: dict, box, stages: list[str]) -> None:
    """Curves, confusion matrix, per-class scores, sample and misclassified predictions."""

    predicted = probs.argmax(axis=1)
    matrix = reports.confusion_matrix(data.y_test, predicted, data.num_classes)
    curves = reports.learning_curves(history, reports.stage_starts(stages))
    _log_figure(box, curves, "plots/learning_curves.png")
    _log_figure(
        box, reports.confusion_figure(matrix, data.class_names), "plots/confusion_matrix.png"
    )
    _log_table(box, reports.per_class_scores(matrix, data.class_names), "metrics/per_class.json")
    n = min(cfg.mlflow.samples, len(data.x_test))
    if n == 0:
        return
    picks = np.random.default_rng(cfg.seed).choice(len(data.x_test), n, replace=False)
    _log_figure(
        box,
        reports.prediction_grid(
            data.x_test[picks], data.y_test[picks], probs[picks], data.class_names
        ),
        "plots/predictions.png",
    )
    rows = reports.top_k_rows(data.y_test[picks], probs[picks], data.class_names, cfg.mlflow.top_k)
    _log_table(box, _columns(rows), "predictions/top_k.json")
    wrong = np.flatnonzero(predicted != data.y_test)[:n]
    if len(wrong):
        _log_figure(
            box,
            reports.prediction_grid(
                data.x_test[wrong], data.y_test[wrong], probs[wrong], data.class_names
            ),
            "plots/misclassified.png",
        )


def _log_figure(box, figure, path: str) -> None:
    import matplotlib.pyplot as plt
    import mlflow

    box.send(path, lambda: mlflow.log_figure(figure, path),
             outbox.keep_file(path, figure.savefig))  # fmt: skip
    plt.close(figure)


def _log_table(box, table: dict, path: str) -> None:
    import mlflow

    keep = outbox.keep_file(path, lambda p: p.write_text(json.dumps(table, default=str)))
    box.send(path, lambda: mlflow.log_table(table, path), keep)


def _columns(rows: list[dict]) -> dict[str, list]:
    return {key: [row[key] for row in rows] for key in rows[0]}


def _best(history: dict[str, list[float]], test: dict, metric: str) -> float:
    """The best epoch's value of ``metric`` (lowest for losses), else the test value."""
    if history.get(metric):
        values = history[metric]
        return float(min(values) if "loss" in metric else max(values))
    name = metric.removeprefix("test_")
    if name in test:
        return float(test[name])
    raise KeyError(f"metric {metric!r} was not recorded; known: {sorted(history)}")
