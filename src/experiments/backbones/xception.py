"""Xception (Chollet), ImageNet weights from keras.applications."""

from __future__ import annotations

from experiments.backbones import BackboneSpec

SPEC = BackboneSpec(
    name="xception",
    min_size=71,
    channels=3,
    imagenet=True,
    preprocessing="scale to [-1, 1]",
)


def weights_file(size: int) -> str:
    return "xception_weights_tf_dim_ordering_tf_kernels_notop.h5"


def preprocessing() -> list:
    from keras import layers

    # keras.applications.xception.preprocess_input: x / 127.5 - 1
    return [layers.Rescaling(1.0 / 127.5, offset=-1.0, name="scale_to_pm1")]


def base(input_shape: tuple[int, ...], weights: str | None):
    import keras

    return keras.applications.Xception(
        include_top=False, weights=weights, input_shape=input_shape, name="base"
    )
