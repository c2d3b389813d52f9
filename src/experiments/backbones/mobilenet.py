"""MobileNet v1 (Howard et al.), width 1.0, ImageNet weights from keras.applications."""

from __future__ import annotations

from experiments.backbones import BackboneSpec

SPEC = BackboneSpec(
    name="mobilenet",
    min_size=32,
    channels=3,
    imagenet=True,
    preprocessing="scale to [-1, 1]",
)
WEIGHT_SIZES = (128, 160, 192, 224)  # input sizes with their own ImageNet weights


def weights_file(size: int) -> str:
    # Keras loads the 224 weights for any other size (the convolutions fit every size).
    rows = size if size in WEIGHT_SIZES else 224
    return f"mobilenet_1_0_{rows}_tf_no_top.h5"


def preprocessing() -> list:
    from keras import layers

    # keras.applications.mobilenet.preprocess_input: x / 127.5 - 1
    return [layers.Rescaling(1.0 / 127.5, offset=-1.0, name="scale_to_pm1")]


def base(input_shape: tuple[int, ...], weights: str | None):
    import keras

    return keras.applications.MobileNet(
        include_top=False, weights=weights, input_shape=input_shape, name="base"
    )
