"""The run's best epoch: which one it is, its weights, and early stopping on it.

One ``Tracker`` follows the run's ``metric`` over every stage of its phase (both stages of
``finetune``) on the run's step axis. A Keras callback per stage feeds it each epoch,
keeps a copy of the weights of the best epoch (and ``checkpoints/best.keras`` with
``best.json``), and stops the stage when ``trainer.early_stopping.patience`` epochs went
by without an improvement of more than ``min_delta``. At the end, ``restore`` puts the
best epoch's weights back, so the test, the reports and the logged model come from it.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path

from experiments.metrics import epoch_metric, lower_is_better
from experiments.training import checkpoints

log = logging.getLogger(__name__)

BEST_STATE = "best.json"  # which epoch checkpoints/best.keras holds


@dataclass
class Tracker:
    """The best epoch so far, and the last epoch that improved by more than ``min_delta``."""

    metric: str  # the per-epoch metric, e.g. val_accuracy
    value: float | None = None
    step: int | None = None  # on the run's step axis (0-based epochs)
    stage: str | None = None
    improved_step: int | None = None  # for early stopping
    improved_value: float | None = None
    stopped_step: int | None = None  # where early stopping ended the run, if it did
    tie: float | None = None  # the best epoch's ``tie_metric``, which breaks a tie
    snapshot: list = field(default_factory=list, repr=False)  # (variable, value) pairs

    @property
    def tie_metric(self) -> str:
        """The other validation metric: an epoch that equals the best on ``metric`` and is
        better on this one is the better model (0.643 accuracy at loss 1.28, not 1.73)."""
        return "val_accuracy" if lower_is_better(self.metric) else "val_loss"

    def better(self, value: float, than: float | None, margin: float = 0.0) -> bool:
        if than is None:
            return True
        if lower_is_better(self.metric):
            return value < than - margin
        return value > than + margin

    def beats_best(self, value: float, tie: float | None) -> bool:
        """Whether an epoch at ``value`` (and ``tie``) is the new best epoch."""
        if self.better(value, self.value):
            return True
        if value != self.value or tie is None or self.tie is None:
            return False
        return tie > self.tie if lower_is_better(self.metric) else tie < self.tie

    def state(self) -> dict:
        """What a resumed run needs to go on (the weights are in best.keras)."""
        return {k: v for k, v in asdict(self).items() if k != "snapshot"}

    @classmethod
    def from_state(cls, metric: str, state: dict | None) -> Tracker:
        if not state or state.get("metric") != metric:
            return cls(metric)
        return cls(**{k: v for k, v in state.items() if k != "snapshot"})


def callback(tracker: Tracker, model, stage: str, first_step: int, trainer, folder: Path | None):
    """A Keras callback following ``tracker`` through one stage (its ``fit`` call).

    ``model`` is the whole model, whatever ``fit`` trains (the head alone, on cached
    features, shares its weights). ``trainer`` holds ``early_stopping.patience`` (None:
    off) and ``early_stopping.min_delta``.
    """
    import keras

    patience = trainer.early_stopping.patience
    min_delta = trainer.early_stopping.min_delta

    class BestEpoch(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            value = (logs or {}).get(tracker.metric)
            if value is None:
                return
            step = first_step + epoch
            value = float(value)
            tie = (logs or {}).get(tracker.tie_metric)
            tie = None if tie is None else float(tie)
            if tracker.beats_best(value, tie):
                tracker.value, tracker.step, tracker.stage, tracker.tie = value, step, stage, tie
                tracker.snapshot = [(v, v.numpy()) for v in model.weights]
                if folder is not None:
                    _save_best(model, folder, tracker)
            if tracker.better(value, tracker.improved_value, min_delta):
                tracker.improved_value, tracker.improved_step = value, step
            if patience is not None and _waited(tracker, step, first_step) >= patience:
                tracker.stopped_step = step
                self.model.stop_training = True  # the model fit() trains: the head or all
                log.info(
                    "Early stopping after epoch %d: no gain of %s over %g in %d epoch(s)",
                    step,
                    tracker.metric,
                    min_delta,
                    patience,
                )

    return BestEpoch()


def _waited(tracker: Tracker, step: int, first_step: int) -> int:
    """Epochs without improvement, counted from the stage's start at the earliest."""
    since = tracker.improved_step if tracker.improved_step is not None else -1
    return step - max(since, first_step - 1)


def _save_best(model, folder: Path, tracker: Tracker) -> None:
    checkpoints.save_model(model, folder / checkpoints.BEST)
    checkpoints.write_atomically(folder / BEST_STATE, json.dumps(tracker.state()).encode())


def resumed(metric: str, folder: Path, state: dict | None) -> Tracker:
    """The tracker of a resumed run, whose best weights are in ``folder/best.keras``.

    A kill between saving ``best.keras`` and ``last.json`` can leave a best from an epoch
    that is about to be trained again; that one is dropped.
    """
    tracker = Tracker.from_state(metric, state)
    path = folder / BEST_STATE
    saved = json.loads(path.read_text()) if path.is_file() else {}
    if tracker.step is not None and saved.get("step") != tracker.step:
        log.warning(
            "checkpoints/best.keras holds epoch %s, not the best epoch %s: "
            "the best epoch is chosen again from the resumed epochs",
            saved.get("step"),
            tracker.step,
        )
        return Tracker(metric)
    return tracker


def restore(model, tracker: Tracker, last_step: int, folder: Path | None) -> bool:
    """Put the best epoch's weights back into ``model``; False when there is nothing to do."""
    if tracker.step is None or tracker.step == last_step:
        return False
    if tracker.snapshot:
        for variable, value in tracker.snapshot:
            variable.assign(value)
    else:  # a resumed run whose best epoch came before the interruption
        model.load_weights(folder / checkpoints.BEST)
    log.info(
        "Restored the weights of epoch %d (%s, best %s=%.4f); the last epoch was %d",
        tracker.step,
        tracker.stage,
        tracker.metric,
        tracker.value,
        last_step,
    )
    return True


def tracker_for(metric: str, folder: Path | None, resumed_best: dict | None = None) -> Tracker:
    """The best epoch of the run's ``metric`` so far: none, or where a resumed run left it."""
    metric = epoch_metric(metric)
    if folder is None or resumed_best is None:
        return Tracker(metric)
    return resumed(metric, folder, resumed_best)


def model_step(
    model, tracker: Tracker, history: dict, folder: Path | None, restore_best: bool
) -> int:
    """Restore the best epoch's weights (``trainer.restore_best``); the step the model is from."""
    last_step = len(history.get("loss", [])) - 1
    if restore_best and restore(model, tracker, last_step, folder):
        return tracker.step
    return max(last_step, 0)


def selection_metrics(history: dict, tracker: Tracker) -> dict[str, float]:
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


def stage_tags(stages: list[str], tracker: Tracker) -> dict[str, str]:
    """The run's stages (``warmup@0,finetune@2``) and the stage of its best epoch."""
    tags = {"stages": ",".join(stages)}
    if tracker.stage is not None:
        tags["best_epoch_stage"] = tracker.stage
    return tags
