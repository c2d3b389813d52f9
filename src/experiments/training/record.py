"""What a training run records in MLflow: its inputs before training, its results after.

Every call to the store goes through the run's outbox (``sender``): if a tracking server
stops answering, training goes on and what could not be sent is kept on disk.
"""

from __future__ import annotations

import json
import logging
import tempfile
import time
from pathlib import Path

import numpy as np
from omegaconf import OmegaConf

from experiments.config.schema import flatten
from experiments.data import stream
from experiments.explaining import interpretation
from experiments.reporting import calibration, fonts, ranking
from experiments.tracking import logged_models, outbox, predictions, store
from experiments.training import best_epoch, cost, resume
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


def results(cfg, data, model, trained, sender, runtime: dict) -> dict:
    """Test the model; log its test metrics, calibration and cost at its step, the per-image
    predictions, the reports and the model itself.

    One pass over each split gives everything: the test loss and accuracy are computed from
    the predicted probabilities, as Keras' ``evaluate`` would (the same clipped
    cross-entropy), so no second pass over the test set runs.
    """
    import mlflow

    from experiments.reporting import reports  # imports matplotlib: not for --help

    batch = stream.inference_batch(cfg.trainer.batch_size)
    probs = np.asarray(stream.predict(model, data.x_test, batch), np.float32)
    val_probs = np.zeros((0, data.num_classes), np.float32)
    if len(data.x_val):
        val_probs = np.asarray(stream.predict(model, data.x_val, batch), np.float32)
    test = {
        "loss": calibration.nll(probs, data.y_test),
        "accuracy": float(np.mean(probs.argmax(axis=1) == data.y_test)),
    }
    tested = _tested_classes(data)
    metrics = {
        "test_loss": test["loss"],
        "test_accuracy": test["accuracy"],
        "test_classes": tested,
        **_training_metrics(model, trained),
        **_calibration(probs, data.y_test, val_probs, data.y_val),
    }
    if cfg.cost.measure:
        threads, policy = runtime["runtime.threads"], runtime["runtime.precision"]
        begun = time.perf_counter()
        cost_metrics, tags = cost.measure(model, cfg.cost, threads, policy)
        metrics.update(cost_metrics, cost_time_s=time.perf_counter() - begun)  # its own price
        sender.send("tags", lambda: mlflow.set_tags(tags), outbox.keep_json("tags.json", tags))
    # At the model's step: MLflow shows them with the model.
    sender.metrics(metrics, step=trained.step)
    for part, labels, p in (("test", data.y_test, probs), ("val", data.y_val, val_probs)):
        _log_predictions(sender, part, predictions.arrays(labels, p, data.digest(part)))
    _log_reports(cfg, data, probs, trained.history, sender, trained.stages)
    begun = time.perf_counter()
    _log_interpretation(cfg.interpretation, data, model, probs, sender)
    sender.metrics({"interpretation_time_s": time.perf_counter() - begun}, step=trained.step)
    temperature = metrics.get("temperature", 1.0)
    _log_figure(
        sender,
        reports.reliability_figure(probs, data.y_test, calibration.scaled(probs, temperature)),
        "plots/reliability.png",
    )
    if cfg.mlflow.log_model:
        _log_model(sender, model, data.class_names, trained.step)
    return test


def pruned(model, trained, sender) -> dict:
    """A run its search pruned: its training metrics and curves; no test, cost nor model
    (its search abandoned it, and those cost more than its epochs did)."""
    from experiments.reporting import reports  # imports matplotlib: not for --help

    sender.metrics(_training_metrics(model, trained), step=trained.step)
    curves = reports.learning_curves(trained.history, reports.stage_starts(trained.stages))
    _log_figure(sender, curves, "plots/learning_curves.png")
    return {}


def _training_metrics(model, trained) -> dict:
    return {  # how long it trained, how big it is, where its best epoch was
        "train_time_s": trained.seconds,
        "epoch_time_mean_s": trained.seconds / max(1, trained.epochs_run),
        "total_params": model.count_params(),
        "trainable_params": int(sum(np.prod(w.shape) for w in model.trainable_weights)),
        **best_epoch.selection_metrics(trained.history, trained.tracker),
    }


def _log_model(sender, model, class_names: list[str], step: int) -> None:
    """The model, as an MLflow model; kept as ``model.keras`` while the server is away, and
    logged from memory once it is back."""
    sender.send(
        "the model (model.keras)",
        lambda: logged_models.log_keras_model(model, class_names, step=step),
        lambda folder: model.save(folder / "model.keras"),
        again=True,
    )


def _tested_classes(data) -> int:
    """How many classes the test set holds; the ones it lacks are named in a warning."""
    support = np.bincount(np.asarray(data.y_test, np.int64), minlength=data.num_classes)
    untested = [name for name, count in zip(data.class_names, support, strict=True) if not count]
    if untested:
        log.warning(
            "The test metrics cover %d of %d classes: %s had no test image",
            data.num_classes - len(untested),
            data.num_classes,
            ", ".join(map(repr, untested)),
        )
    return data.num_classes - len(untested)


def _calibration(probs, labels, val_probs, val_labels) -> dict[str, float]:
    """ECE, NLL and Brier score on the test set; the temperature fitted on validation and
    the test scores once scaled by it (with no validation images: T = 1, not fitted)."""
    scores = calibration.scores(probs, labels)
    if len(val_labels) == 0:
        return scores
    temperature = calibration.fit_temperature(val_probs, val_labels)
    calibrated = calibration.scaled(probs, temperature)
    return {
        **scores,
        "temperature": temperature,
        "test_ece_calibrated": calibration.ece(calibrated, labels),
        "test_nll_calibrated": calibration.nll(calibrated, labels),
    }


def _log_predictions(sender, part: str, content: dict) -> None:
    import mlflow

    def call() -> None:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / f"{part}.npz"
            predictions.write(path, content)
            mlflow.log_artifact(str(path), predictions.FOLDER)

    where = f"{predictions.FOLDER}/{part}.npz"
    sender.send(where, call, outbox.keep_file(where, lambda p: predictions.write(p, content)))


def _log_reports(cfg, data, probs: np.ndarray, history: dict, sender, stages: list[str]) -> None:
    """Curves, confusion matrix, per-class scores, sample and misclassified predictions."""
    from experiments.reporting import reports  # imports matplotlib: not for --help

    names, families = fonts.plot_names(data.class_names)  # any script, or "class <i>"
    predicted = probs.argmax(axis=1)
    matrix = reports.confusion_matrix(data.y_test, predicted, data.num_classes)
    _log_table(sender, reports.per_class_scores(matrix, data.class_names), "metrics/per_class.json")
    with fonts.drawing(families):
        curves = reports.learning_curves(history, reports.stage_starts(stages))
        _log_figure(sender, curves, "plots/learning_curves.png")
        _log_figure(sender, reports.confusion_figure(matrix, names), "plots/confusion_matrix.png")
        n = min(cfg.mlflow.samples, len(data.x_test))
        if n == 0:
            return
        picks = np.random.default_rng(cfg.seed).choice(len(data.x_test), n, replace=False)
        _log_figure(
            sender,
            reports.prediction_grid(
                np.asarray(data.x_test[picks]), data.y_test[picks], probs[picks], names
            ),
            "plots/predictions.png",
        )
        wrong = np.flatnonzero(predicted != data.y_test)[:n]
        if len(wrong):
            _log_figure(
                sender,
                reports.prediction_grid(
                    np.asarray(data.x_test[wrong]), data.y_test[wrong], probs[wrong], names
                ),
                "plots/misclassified.png",
            )
    rows = ranking.top_k_rows(data.y_test[picks], probs[picks], data.class_names, cfg.mlflow.top_k)
    _log_table(sender, _columns(rows), "predictions/top_k.json")


def _log_interpretation(cfg, data, model, probs: np.ndarray, sender) -> None:
    """``interpretation/``: confused pairs, top losses and correct images with their maps."""
    labels = np.asarray(data.y_test, np.int64)
    names = data.class_names
    if cfg.confused_pairs > 0 and len(labels):
        predicted = probs.argmax(axis=1)
        pairs = interpretation.confused_pairs(labels, predicted, names, cfg.confused_pairs)
        if pairs["count"]:
            _log_table(sender, pairs, "interpretation/confused_pairs.json")
    galleries = (
        ("top_losses", interpretation.top_losses(probs, labels, cfg.top_losses), "Top losses"),
        ("correct", interpretation.correct_sample(probs, labels, cfg.per_class), "Correct"),
    )
    names_drawn, families = fonts.plot_names(names)
    for name, rows, title in galleries:
        if len(rows) == 0:
            continue
        rows = np.sort(rows) if name == "correct" else rows
        images = np.asarray(data.x_test[np.asarray(rows, np.int64)])
        with fonts.drawing(families):
            figure = interpretation.gallery(
                cfg, model, images, labels[rows], probs[rows], names_drawn, title
            )
        _log_figure(sender, figure, f"interpretation/{name}.png")


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
