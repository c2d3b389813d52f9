"""What a training run records in MLflow: its inputs before training, its results after.

Every call to the store goes through the run's outbox (``sender``): if a tracking server
stops answering, training goes on and what could not be sent is kept on disk.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
from omegaconf import OmegaConf

from experiments.config.schema import flatten
from experiments.data import stream
from experiments.reporting import ranking
from experiments.tracking import logged_models, outbox, store
from experiments.training import best_epoch, resume
from experiments.uris import redact

log = logging.getLogger(__name__)


def inputs(cfg, data, runtime: dict, sender, resuming) -> None:
    """The params (config, data, ``runtime``), class names, dataset inputs and config.yaml.

    A resumed run keeps what it first logged; what the resume changed becomes tags.
    """
    import mlflow

    if resuming:
        resume.log_changed_settings(cfg)
        return
    params = {**runtime, **flatten(cfg), **_data_params(data)}
    sender.send(
        "params", lambda: mlflow.log_params(params), outbox.keep_json("params.json", params)
    )
    classes = {"class_names": data.class_names}
    sender.send(
        "class_names.json",
        lambda: mlflow.log_dict(classes, "class_names.json"),
        outbox.keep_file("class_names.json", lambda p: p.write_text(json.dumps(classes))),
    )
    sender.send(
        "dataset inputs", lambda: store.log_inputs(cfg.dataset.name, data), lambda folder: None
    )
    text = redact(OmegaConf.to_yaml(cfg, resolve=True))
    sender.send(
        "config.yaml",
        lambda: mlflow.log_text(text, "config.yaml"),
        outbox.keep_file("config.yaml", lambda p: p.write_text(text)),
    )


def _data_params(data) -> dict:
    return {
        "data.train_size": len(data.x_train),
        "data.val_size": len(data.x_val),
        "data.test_size": len(data.x_test),
        "data.source": data.source,
        "data.classes": ",".join(data.class_names)[:1000],  # the whole list: class_names.json
    }


def checkpoint_folder(sender, folder: Path | None) -> None:
    """The run's checkpoint folder, once its epochs are all sent."""
    import mlflow

    sender.settle()
    if folder is not None and folder.is_dir():
        sender.send(
            "checkpoints",
            lambda: mlflow.log_artifacts(str(folder), "checkpoints"),
            outbox.keep_tree(folder, "checkpoints"),
        )


def stage_tags(sender, stage_list: list[str], tracker) -> None:
    """Which stages ran, and which held the best epoch."""
    import mlflow

    tags = best_epoch.stage_tags(stage_list, tracker)
    sender.send("tags", lambda: mlflow.set_tags(tags), outbox.keep_json("tags.json", tags))


def results(cfg, data, model, trained, sender) -> dict:
    """Test the model; log the test metrics at its step, the reports and the model itself."""
    batch = stream.inference_batch(cfg.trainer.batch_size)
    test = stream.evaluate(model, data.x_test, data.y_test, batch)
    probs = stream.predict(model, data.x_test, batch)
    trainable = int(sum(np.prod(w.shape) for w in model.trainable_weights))
    metrics = {
        "test_loss": float(test["loss"]),
        "test_accuracy": float(test["accuracy"]),
        "train_time_s": trained.seconds,
        "total_params": model.count_params(),
        "trainable_params": trainable,
        **best_epoch.selection_metrics(trained.history, trained.tracker),
    }
    # At the model's step: MLflow shows them with the model.
    sender.metrics(metrics, step=trained.step)
    _log_reports(cfg, data, probs, trained.history, sender, trained.stages)
    if cfg.mlflow.log_model:
        sender.send(
            "the model (model.keras)",
            lambda: logged_models.log_keras_model(model, data.class_names, step=trained.step),
            lambda folder: model.save(folder / "model.keras"),
        )
    return test


def _log_reports(cfg, data, probs: np.ndarray, history: dict, sender, stages: list[str]) -> None:
    """Curves, confusion matrix, per-class scores, sample and misclassified predictions."""
    from experiments.reporting import reports  # imports matplotlib: not for --help

    predicted = probs.argmax(axis=1)
    matrix = reports.confusion_matrix(data.y_test, predicted, data.num_classes)
    curves = reports.learning_curves(history, reports.stage_starts(stages))
    _log_figure(sender, curves, "plots/learning_curves.png")
    _log_figure(
        sender, reports.confusion_figure(matrix, data.class_names), "plots/confusion_matrix.png"
    )
    _log_table(sender, reports.per_class_scores(matrix, data.class_names), "metrics/per_class.json")
    n = min(cfg.mlflow.samples, len(data.x_test))
    if n == 0:
        return
    picks = np.random.default_rng(cfg.seed).choice(len(data.x_test), n, replace=False)
    _log_figure(
        sender,
        reports.prediction_grid(
            np.asarray(data.x_test[picks]), data.y_test[picks], probs[picks], data.class_names
        ),
        "plots/predictions.png",
    )
    rows = ranking.top_k_rows(data.y_test[picks], probs[picks], data.class_names, cfg.mlflow.top_k)
    _log_table(sender, _columns(rows), "predictions/top_k.json")
    wrong = np.flatnonzero(predicted != data.y_test)[:n]
    if len(wrong):
        _log_figure(
            sender,
            reports.prediction_grid(
                np.asarray(data.x_test[wrong]), data.y_test[wrong], probs[wrong], data.class_names
            ),
            "plots/misclassified.png",
        )


def _log_figure(sender, figure, path: str) -> None:
    import matplotlib.pyplot as plt  # not for --help
    import mlflow

    sender.send(
        path, lambda: mlflow.log_figure(figure, path), outbox.keep_file(path, figure.savefig)
    )
    plt.close(figure)


def _log_table(sender, table: dict, path: str) -> None:
    import mlflow

    keep = outbox.keep_file(path, lambda p: p.write_text(json.dumps(table, default=str)))
    sender.send(path, lambda: mlflow.log_table(table, path), keep)


def _columns(rows: list[dict]) -> dict[str, list]:
    return {key: [row[key] for row in rows] for key in rows[0]}
