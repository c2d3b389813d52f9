"""The reference report's small CNN, exactly (93,322 parameters on 28x28x1, 10 classes).

Its base is the report's convolutions; its head the two dense layers (64 units, then the
classes), so ``phase=transfer`` can reuse the convolutions of an earlier run.
"""

from __future__ import annotations

from experiments.backbones import BackboneSpec

SPEC = BackboneSpec(
    name="custom_cnn",
    min_size=18,  # three valid 3x3 convolutions and two poolings leave 1x1 at 18 pixels
    channels=None,
    imagenet=False,
    preprocessing="scale to [0, 1]",
    head_units=64,
)


def preprocessing() -> list:
    from keras import layers

    # The report fed pixels divided by 255; inside the model, raw images just work.
    return [layers.Rescaling(1.0 / 255, name="rescale")]


def base(input_shape: tuple[int, ...], weights: str | None = None):
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
