"""Keras' progress during fit, written to a file or a pipe: plain lines, never past the total."""

from __future__ import annotations

import re

import numpy as np
import pytest

from experiments import progress


def _fit(verbose: int, with_logger: bool):
    import keras

    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2, activation="softmax")])
    # 10 batches in calls of 4: Keras' own bar reports the third, partial call as steps 9-12
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy", steps_per_execution=4)
    x, y = np.zeros((10, 3), np.float32), np.zeros(10, np.int64)
    callbacks = [progress.keras_logger()] if with_logger else []
    model.fit(x, y, batch_size=1, epochs=2, verbose=verbose, callbacks=callbacks)


def _counts(text: str) -> list[tuple[int, int]]:
    return [(int(a), int(b)) for a, b in re.findall(r"(\d+)/(\d+)", text) if b == "10"]


@pytest.mark.slow  # imports TensorFlow and fits: about 4 s
def test_progress_to_a_pipe_is_plain_lines_that_stop_at_the_total(capsys):
    _fit(verbose=1, with_logger=True)
    out = capsys.readouterr().out  # pytest's capture is not a terminal, as a file or pipe
    assert not re.search(r"[\r\b\x1b]", out), repr(out)
    counts = _counts(out)
    assert counts == [(10, 10), (10, 10)], out  # one line per epoch, at its total


def _steps_seen(logger, monkeypatch, terminal: bool) -> list[int]:
    """The counts ``logger`` shows for 10 batches in calls of 4, driven as Keras' trainer
    drives it: each call ends at ``begin + 4 - 1``, the partial third one too (step 11)."""
    monkeypatch.setattr(progress, "_terminal", lambda: terminal)
    logger.set_params({"verbose": 1, "epochs": 1, "steps": 10})
    logger.on_epoch_begin(0)
    seen = []
    for end_step in (3, 7, 11):
        logger.on_train_batch_end(end_step, {"loss": 0.5})
        seen.append(logger.seen)
    logger.on_epoch_end(0, {"loss": 0.5})
    return seen


def test_the_bar_never_counts_past_its_total_on_a_terminal_or_not(monkeypatch, capsys):
    for terminal in (True, False):
        assert _steps_seen(progress.keras_logger(), monkeypatch, terminal) == [4, 8, 10]
    from keras.callbacks import ProgbarLogger  # Keras' own: the cause, 12/10 (432/422)

    assert _steps_seen(ProgbarLogger(), monkeypatch, True)[-1] == 12
