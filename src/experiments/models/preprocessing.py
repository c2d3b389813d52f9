"""The layers that turn raw 0-255 pixels into what a base expects, one set per kind.

Each kind equals ``keras.applications.<family>.preprocess_input`` (tests check every row),
built from Keras' own layers rather than a Lambda, so a saved model loads in safe mode.
"""

from __future__ import annotations

BGR_MEAN = (103.939, 116.779, 123.68)  # the "caffe" mode's channel means, in BGR order
RGB_MEAN = (0.485, 0.456, 0.406)  # the "torch" mode's ImageNet mean and std, on [0, 1]
RGB_STD = (0.229, 0.224, 0.225)


def layers(kind: str) -> list:
    """The preprocessing layers of ``kind`` (a key of ``registry.PREPROCESSING``)."""
    from keras import layers

    if kind == "unit":
        return [layers.Rescaling(1.0 / 255, name="rescale")]
    if kind == "tf":
        return [layers.Rescaling(1.0 / 127.5, offset=-1.0, name="scale_to_pm1")]
    if kind == "torch":
        scale = [1.0 / (255.0 * std) for std in RGB_STD]
        offset = [-mean / std for mean, std in zip(RGB_MEAN, RGB_STD, strict=True)]
        return [layers.Rescaling(scale, offset=offset, name="torch_mean_std")]
    if kind == "caffe":
        return [_caffe()]
    if kind == "included":
        return [layers.Identity(name="included_in_base")]
    raise ValueError(f"unknown preprocessing kind {kind!r}")


def _caffe():
    """Caffe-style input as one fixed 1x1 convolution: swap R and B, subtract the means."""
    import numpy as np
    from keras import layers

    swap = np.zeros((1, 1, 3, 3), np.float32)
    for out_channel, in_channel in enumerate((2, 1, 0)):
        swap[0, 0, in_channel, out_channel] = 1.0
    bias = -np.asarray(BGR_MEAN, np.float32)
    conv = layers.Conv2D(3, 1, name="caffe_bgr_mean", trainable=False)
    conv.build((None, None, None, 3))
    conv.set_weights([swap, bias])
    return conv
