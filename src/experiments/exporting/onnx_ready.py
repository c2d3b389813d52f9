"""The model rewritten, layer for layer, into TensorFlow ops that tf2onnx translates.

Two layers of the zoo compute with ops tf2onnx has no ONNX equivalent for:

- a grouped ``Conv2D`` whose groups equal its channels (ConvNeXt's 7x7 "depthwise"
  convolution): Keras runs grouped convolutions on the CPU inside an XLA function, which
  tf2onnx sees as one opaque ``StatefulPartitionedCall``;
- the exact GELU (``Activation("gelu")``): TensorFlow writes it with ``Erfc``.

The copy holds a ``DepthwiseConv2D`` with the same kernel in its own layout, and the same
GELU written with ``Erf``; every other layer is shared, weights included. The math is
unchanged, and the parity gate compares the exported file with the original model anyway.
"""

from __future__ import annotations

import math


def rewritten(model, sample):
    """``model``, or a copy of it with the two layers above replaced, called once on
    ``sample`` (Keras exports only a model that has been called); ``model`` itself when it
    holds neither (nothing is cloned then)."""
    import keras

    if not any(_replaced(layer) for layer in _leaves(model)):
        return model

    def clone(layer):
        if not _replaced(layer):
            return layer  # shared: the same weights, no copy
        if _depthwise(layer):
            return _as_depthwise(layer)
        return keras.layers.Activation(_gelu_with_erf, name=layer.name, dtype=layer.dtype_policy)

    copy = keras.models.clone_model(model, clone_function=clone, recursive=True)
    copy(sample[:1])
    return copy


def _leaves(model):
    for layer in getattr(model, "layers", []):
        yield layer
        yield from _leaves(layer)


def _replaced(layer) -> bool:
    """An exact GELU activation, or a depthwise grouped convolution."""
    import keras

    gelu = isinstance(layer, keras.layers.Activation) and layer.activation is keras.activations.gelu
    return gelu or _depthwise(layer)


def _gelu_with_erf(x):
    """Exact GELU, x * Phi(x), with ``erf`` (TensorFlow's own uses ``erfc``)."""
    from keras import ops

    return 0.5 * x * (1.0 + ops.erf(x / math.sqrt(2.0)))


def _depthwise(layer) -> bool:
    """A 2D convolution with one input channel per group and one filter per group."""
    import keras

    if type(layer) is not keras.layers.Conv2D or layer.groups == 1:
        return False
    return layer.kernel.shape[2] == 1 and layer.filters == layer.groups


def _as_depthwise(conv):
    import keras

    config = conv.get_config()
    depthwise = keras.layers.DepthwiseConv2D(
        kernel_size=config["kernel_size"],
        strides=config["strides"],
        padding=config["padding"],
        data_format=config["data_format"],
        dilation_rate=config["dilation_rate"],
        depth_multiplier=1,
        activation=config["activation"],
        use_bias=config["use_bias"],
        name=conv.name,
        dtype=conv.dtype_policy,
    )
    channels = conv.filters
    shape = (None, None, None, channels)
    if config["data_format"] == "channels_first":
        shape = (None, channels, None, None)
    depthwise.build(shape)
    kernel = keras.ops.convert_to_numpy(conv.kernel)  # (h, w, 1, channels)
    weights = [kernel.transpose(0, 1, 3, 2)]  # (h, w, channels, 1)
    if conv.use_bias:
        weights.append(keras.ops.convert_to_numpy(conv.bias))
    depthwise.set_weights(weights)
    return depthwise
