"""The reference report's small CNN, exactly (93,322 parameters on 28x28x1, 10 classes).

Its base is the report's convolutions; its head the two dense layers (64 units, then the
classes), so ``phase=transfer`` can reuse the convolutions of an earlier run. The report
fed pixels divided by 255; its row in ``registry`` puts that scaling inside the model.
"""

from __future__ import annotations


def base(input_shape: tuple[int, ...], weights: str | None = None, include_top: bool = False):
    """Conv(32)-Pool-Conv(64)-Pool-Conv(64)-Flatten, randomly initialised."""
    import keras
    from keras import layers

    return keras.Sequential(
        [
            keras.Input(shape=input_shape),
            layers.Conv2D(32, 3, activation="relu"),
            layers.MaxPooling2D(),
            layers.Conv2D(64, 3, activation="relu"),
            layers.MaxPooling2D(),
            layers.Conv2D(64, 3, activation="relu"),
            layers.Flatten(),
        ],
        name="base",
    )
