"""The reference report's network in plain Keras: no framework, no MLflow, no Hydra.

    python benchmarks/bare_keras.py --epochs 10 --batch-size 32 [--deterministic] [--limit N]

Reads Fashion-MNIST's IDX files itself, holds out 10% of train for validation, trains,
evaluates on the test set and prints one JSON line: fit seconds, wall seconds, accuracy, and
when (wall clock) the first training step began and the last epoch ended.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import time

STARTED = time.perf_counter()
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

FOLDERS = (
    "/usr/share/datasets/fashion-mnist",
    os.path.expanduser("~/.keras/datasets/fashion-mnist"),
)


def read(name: str, offset: int) -> np.ndarray:
    folder = os.environ.get("FASHION_MNIST_DIR") or next(f for f in FOLDERS if os.path.isdir(f))
    with gzip.open(os.path.join(folder, name)) as handle:
        return np.frombuffer(handle.read(), np.uint8, offset=offset)


def marks_callback():
    """A Keras callback noting (wall clock) the first training step and the last epoch's end."""
    import keras

    class _Marks(keras.callbacks.Callback):
        first_step_at = epochs_end_at = None

        def on_train_batch_begin(self, batch, logs=None):
            if self.first_step_at is None:
                self.first_step_at = time.time()

        def on_epoch_end(self, epoch, logs=None):
            self.epochs_end_at = time.time()

    return _Marks()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--deterministic", action="store_true")
    args = parser.parse_args()

    import keras
    import tensorflow as tf
    from keras import layers

    x = read("train-images-idx3-ubyte.gz", 16).reshape(-1, 28, 28, 1)
    y = read("train-labels-idx1-ubyte.gz", 8).astype("int64")
    x_test = read("t10k-images-idx3-ubyte.gz", 16).reshape(-1, 28, 28, 1)
    y_test = read("t10k-labels-idx1-ubyte.gz", 8).astype("int64")
    order = np.random.default_rng(args.seed).permutation(len(x))
    n_val = len(x) // 10
    val, train = order[:n_val], order[n_val:]
    if args.limit:
        train = train[: args.limit]
    keras.utils.set_random_seed(args.seed)
    if args.deterministic:
        tf.config.experimental.enable_op_determinism()
    model = keras.Sequential(
        [
            keras.Input((28, 28, 1)),
            layers.Rescaling(1.0 / 255),
            layers.Conv2D(32, 3, activation="relu"),
            layers.MaxPooling2D(),
            layers.Conv2D(64, 3, activation="relu"),
            layers.MaxPooling2D(),
            layers.Conv2D(64, 3, activation="relu"),
            layers.Flatten(),
            layers.Dense(64, activation="relu"),
            layers.Dense(10, activation="softmax"),
        ]
    )
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    marks = marks_callback()
    fit_started = time.perf_counter()
    model.fit(
        x[train].astype("float32"),
        y[train],
        validation_data=(x[val].astype("float32"), y[val]),
        epochs=args.epochs,
        batch_size=args.batch_size,
        verbose=0,
        callbacks=[marks],
    )
    fit_s = time.perf_counter() - fit_started
    loss, accuracy = model.evaluate(x_test.astype("float32"), y_test, batch_size=256, verbose=0)
    print(
        json.dumps(
            {
                "fit_s": fit_s,
                "wall_s": time.perf_counter() - STARTED,
                "test_accuracy": accuracy,
                "params": model.count_params(),
                "first_step_at": marks.first_step_at,  # wall clock (time.time())
                "epochs_end_at": marks.epochs_end_at,
            }
        )
    )


if __name__ == "__main__":
    main()
