"""The reference report's small CNN, exactly (93,322 parameters on 28x28x1, 10 classes)."""

from __future__ import annotations

from experiments.backbones import BackboneSpec

SPEC = BackboneSpec(name="custom_cnn", min_size=18, default_phase="scratch")


def build(input_shape: tuple[int, int, int], num_classes: int, cfg=None):
    """Conv(32)-Pool-Conv(64)-Pool-Conv(64)-Dense(64)-Dense(classes), scaling raw pixels inside."""
    import keras
    from keras import layers

    return keras.Sequential(
        [
            keras.Input(shape=input_shape),
            # The report fed pixels divided by 255; doing it in the model keeps the
            # logged artefact usable on raw images.
            layers.Rescaling(1.0 / 255, name="rescale"),
            layers.Conv2D(32, 3, activation="relu"),
            layers.MaxPooling2D(),
            layers.Conv2D(64, 3, activation="relu"),
            layers.MaxPooling2D(),
            layers.Conv2D(64, 3, activation="relu"),
            layers.Flatten(),
            layers.Dense(64, activation="relu"),
            layers.Dense(num_classes, activation="softmax"),
        ],
        name="custom_cnn",
    )
