"""The Keras callbacks of each stage: timing, recording, best epoch, checkpoints, logging."""

from __future__ import annotations

from pathlib import Path

from experiments.tracking import epoch_log
from experiments.training import best_epoch, checkpoints


def stage_callbacks(
    stages: list[str], folder: Path | None, model, sender, tracker, epochs, trainer
):
    """Callbacks for each stage of a phase; stage k's epochs log ``stage=k`` on the shared axis.

    ``tracker`` follows the best epoch across stages (and stops a stage early when asked).
    With ``folder``, the whole ``model`` (even while only its head trains on cached
    features) is saved after every epoch and at the run's best epoch, with where training
    stood, so a crash leaves the latest on disk and the run can resume.
    """
    import keras  # TensorFlow: imported once training starts

    def callbacks(stage: str, first_step: int) -> list:
        entry = f"{stage}@{first_step}"
        if entry not in stages:  # a resumed stage is already listed
            stages.append(entry)
        timer = epoch_log.stopwatch()  # first: the epoch's time without saving and logging
        extra = {"stage": stages.index(entry)}
        chosen = [
            timer,
            keras.callbacks.TerminateOnNaN(),  # stop within the batch
            epoch_log.epoch_recorder(epochs, first_step, extra, timer),
            best_epoch.callback(tracker, model, stage, first_step, trainer, folder),
        ]
        if folder is not None:  # before the metrics: an epoch logged is an epoch saved
            chosen.append(
                checkpoints.callback(folder, model, stage, first_step, stages, tracker, epochs)
            )
        chosen.append(epoch_log.metrics_logger(sender, epochs))
        return chosen

    return callbacks
