"""Keras callbacks that time each epoch, record its metrics on the run's step axis, and log them.

Keras is imported inside the functions, as everywhere outside training: a rejected
command line should not pay for TensorFlow.
"""

from __future__ import annotations

import time


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
