"""In-memory arrays through the project's own tf.data pipeline: an epoch is one exact pass."""

from __future__ import annotations

import numpy as np
import pytest

from experiments.data import stream


@pytest.fixture
def data():
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (40, 4, 4, 1), dtype=np.uint8)
    return x, (x.reshape(40, -1).mean(axis=1) > 127).astype(np.uint8)


def tiny_model(steps_per_execution: int):
    import keras

    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((4, 4, 1)),
            keras.layers.Rescaling(1 / 255),
            keras.layers.Flatten(),
            keras.layers.Dense(2, activation="softmax"),
        ]
    )
    model.compile(
        optimizer="sgd",
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
        steps_per_execution=steps_per_execution,
    )
    return model


def test_an_epoch_is_one_pass_whatever_the_batches_per_call(data):
    """3 batches an epoch, 16 batches a call: still 3 optimizer steps an epoch, and the
    validation metrics are those of the validation set seen exactly once."""
    x, y = data
    model = tiny_model(steps_per_execution=16)
    history = model.fit(
        stream.training(x[:36], y[:36], 16, seed=1),
        epochs=4,
        verbose=0,
        validation_data=stream.evaluation(x[36:], y[36:], 16),
        shuffle=False,
    )
    assert int(model.optimizer.iterations.numpy()) == 4 * stream.steps(36, 16) == 12
    again = model.evaluate(x[36:], y[36:], batch_size=4, verbose=0, return_dict=True)
    assert history.history["val_loss"][-1] == pytest.approx(again["loss"], rel=1e-5)
    assert history.history["val_accuracy"][-1] == pytest.approx(again["accuracy"])


def test_every_pass_holds_every_sample_once_in_a_new_seeded_order(data):
    x, y = data
    passes = []
    training = stream.training(x, y, 16, seed=3)
    for _ in range(2):
        images = np.concatenate([batch.numpy() for batch, _ in training])
        passes.append(
            [int(np.flatnonzero((x == image).all(axis=(1, 2, 3)))[0]) for image in images]
        )
    assert sorted(passes[0]) == sorted(passes[1]) == list(range(40))
    assert passes[0] != passes[1]  # reshuffled
    first = [batch.numpy() for batch, _ in stream.training(x, y, 16, seed=3)]
    assert np.array_equal(np.concatenate(first), x[passes[0]])  # the same seed, the same order
    ordered = np.concatenate([b.numpy() for b, _ in stream.evaluation(x, y, 16)])
    assert np.array_equal(ordered, x)


def test_predict_matches_keras_on_the_arrays(data):
    x, _ = data
    model = tiny_model(steps_per_execution=4)
    np.testing.assert_allclose(stream.predict(model, x, 16), model.predict(x, verbose=0), rtol=1e-6)
