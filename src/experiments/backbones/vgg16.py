"""VGG16 (Simonyan & Zisserman), ImageNet weights from keras.applications."""

from __future__ import annotations

from experiments.backbones import BackboneSpec

SPEC = BackboneSpec(
    name="vgg16",
    min_size=32,
    channels=3,
    imagenet=True,
    preprocessing="caffe: RGB to BGR, minus the ImageNet channel means",
)
BGR_MEAN = (103.939, 116.779, 123.68)  # keras.applications.vgg16.preprocess_input's means


def weights_file(size: int) -> str:
    return "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5"


def preprocessing() -> list:
    """Caffe-style input as one fixed 1x1 convolution: swap R and B, subtract the means.

    A built-in layer rather than a Lambda, so the saved model loads in Keras' safe mode.
    """
    import numpy as np
    from keras import layers

    swap = np.zeros((1, 1, 3, 3), np.float32)
    for out_channel, in_channel in enumerate((2, 1, 0)):
        swap[0, 0, in_channel, out_channel] = 1.0
    bias = -np.asarray(BGR_MEAN, np.float32)
    conv = layers.Conv2D(3, 1, name="caffe_bgr_mean", trainable=False)
    conv.build((None, None, None, 3))
    conv.set_weights([swap, bias])
    return [conv]


def base(input_shape: tuple[int, ...], weights: str | None):
    import keras

    return keras.applications.VGG16(
        include_top=False, weights=weights, input_shape=input_shape, name="base"
    )
