"""The Keras callbacks of each stage: timing, recording, best epoch, checkpoints, logging."""

from __future__ import annotations

from pathlib import Path

from experiments.metrics import epoch_metric
from experiments.search import trial as search_trial
from experiments.tracking import epoch_log, outbox
from experiments.training import best_epoch, checkpoints, lr_find_log


class StageCallbacks:
    """Callbacks for each stage of a phase; stage k's epochs log ``stage=k`` on the shared axis.

    ``tracker`` follows the best epoch across stages (and stops a stage early when asked).
    With ``folder``, the whole ``model`` (even while only its head trains on cached
    features) is saved after every epoch and at the run's best epoch, with where training
    stood, so a crash leaves the latest on disk and the run can resume. ``tag`` lets a
    phase record on the run how it trained (its features computed or reused).
    """

    def __init__(
        self, stages: list[str], folder: Path | None, model, sender, tracker, epochs, trainer
    ):
        self.stages, self.folder, self.model, self.sender = stages, folder, model, sender
        self.tracker, self.epochs, self.trainer = tracker, epochs, trainer
        self.search_trial = search_trial.current(trainer.epochs)  # in an Optuna search

    def __call__(self, stage: str, first_step: int) -> list:
        import keras  # TensorFlow: imported once training starts

        entry = f"{stage}@{first_step}"
        if entry not in self.stages:  # a resumed stage is already listed
            self.stages.append(entry)
        timer = epoch_log.stopwatch()  # first: the epoch's time without saving and logging
        extra = {"stage": self.stages.index(entry)}
        chosen = [
            timer,
            keras.callbacks.TerminateOnNaN(),  # stop within the batch
            epoch_log.epoch_recorder(self.epochs, first_step, extra, timer),
            best_epoch.callback(
                self.tracker, self.model, stage, first_step, self.trainer, self.folder
            ),
        ]
        if self.folder is not None:  # before the metrics: an epoch logged is an epoch saved
            chosen.append(
                checkpoints.callback(
                    self.folder,
                    self.model,
                    stage,
                    first_step,
                    self.stages,
                    self.tracker,
                    self.epochs,
                )
            )
        chosen.append(epoch_log.metrics_logger(self.sender, self.epochs))
        if self.search_trial is not None:  # after the logger: a pruned epoch is logged
            metric = epoch_metric(self.tracker.metric)
            chosen.append(search_trial.callback(self.search_trial, metric, first_step, self.sender))
        return chosen

    def tag(self, tags: dict[str, str]) -> None:
        import mlflow

        self.sender.send("tags", lambda: mlflow.set_tags(tags), outbox.keep_json("tags.json", tags))

    def lr_found(self, found) -> None:
        """The learning-rate finder's suggestion and curve (optimizer.lr=find), on the run."""
        lr_find_log.record(self.sender, found)
