"""Checkpoints: the whole model after every epoch, and where training stood, for resuming.

``checkpoints/<run_id>/`` (under the working directory) holds ``last.keras`` (after every
epoch), ``last.json`` (the stage, its epochs done, the next step of the run's step axis
and the best epoch so far) and ``best.keras`` with ``best.json`` (the best epoch of the
run's ``metric`` over all its stages, written by ``best_epoch``). Each file is written
beside its final name and renamed into place, so a kill during a save leaves the
previous checkpoint whole.
"""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

from experiments.folders import space_for

LAST, BEST, STATE = "last.keras", "best.keras", "last.json"


@dataclass
class State:
    """Where training stood when ``last.keras`` was written."""

    stage: str  # the phase's stage: scratch, transfer, warmup, finetune
    first_step: int  # the stage's first step on the run's step axis
    epochs_done: int  # epochs of this stage completed
    stages: list[str] = field(default_factory=list)  # "<stage>@<first step>", so far
    best: dict | None = None  # best_epoch.Tracker.state() after this epoch
    epochs: list[dict] = field(default_factory=list)  # each epoch's logged metrics, by step

    @property
    def next_step(self) -> int:
        return self.first_step + self.epochs_done


def folder(run_id: str) -> Path:
    """Where a run's checkpoints are written while it trains."""
    return Path.cwd() / "checkpoints" / run_id


def read_state(folder: Path) -> State | None:
    path = folder / STATE
    if not path.is_file() or not (folder / LAST).is_file():
        return None
    return State(**json.loads(path.read_text()))


def callback(folder: Path, model, stage: str, first_step: int, stages: list[str], tracker, epochs):
    """A Keras callback saving ``model`` (the whole model, whatever ``fit`` trains) each epoch,
    with where training stood, ``tracker``'s best epoch (a ``best_epoch.Tracker``) and
    ``epochs``, the metrics of every epoch so far (what the run logs; a resume re-sends
    any that a kill kept from reaching the store)."""
    import keras

    folder.mkdir(parents=True, exist_ok=True)

    class Checkpoint(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            save_model(model, folder / LAST)
            state = State(stage, first_step, epoch + 1, list(stages), tracker.state(), epochs)
            write_atomically(folder / STATE, json.dumps(asdict(state)).encode())

    return Checkpoint()


def save_model(model, path: Path) -> None:
    partial = path.with_name(f".{path.stem}.partial.keras")
    with _replacing(path, partial):
        model.save(partial)


def write_atomically(path: Path, data: bytes) -> None:
    partial = path.with_name(f".{path.name}.partial")
    with _replacing(path, partial):
        partial.write_bytes(data)


@contextlib.contextmanager
def _replacing(path: Path, partial: Path):
    """``partial``, written inside, then renamed to ``path``; removed if the write fails."""
    remedy = "move the run to a disk with room (or set trainer.checkpoints=false)"
    try:
        with space_for(path, "trainer.checkpoints", remedy):
            yield
        os.replace(partial, path)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
