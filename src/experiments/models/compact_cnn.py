"""A compact CNN for small grayscale images, designed for the CPU: the default backbone.

Three 3x3 convolutions (32, 64, 96 filters, "same" padding), each followed by 2x2 max
pooling, so the image shrinks 28 -> 14 -> 7 -> 3 and the costly full-resolution stage has
only 32 filters; then the 3x3x96 map is flattened (where a feature sits matters for
clothes) and lightly dropped out. The head: 64 units with batch normalisation, dropout,
the classes. About 6.6 million multiply-adds per 28x28 image (the reference network: 2.8
million) and 130,410 parameters.

Its training recipe is in ``conf/backbone/compact_cnn.yaml``: batch 128, 15 epochs, Adam
with a short warm-up and a cosine decay, random horizontal flips, bfloat16 compute.
Batch normalisation after each convolution was tried and left out: on this CPU it
tripled the epoch time for no gain in 15 epochs (benchmarks/RESULTS.md says what else was
tried).
"""

from __future__ import annotations

FILTERS = (32, 64, 96)
FEATURE_DROPOUT = 0.15  # on the flattened feature map, before the head


def base(input_shape: tuple[int, ...], weights: str | None = None, include_top: bool = False):
    """The convolutions, flattened and dropped out; randomly initialised (its row: registry)."""
    import keras
    from keras import layers

    stack = [keras.Input(shape=input_shape)]
    for filters in FILTERS:
        stack += [
            layers.Conv2D(filters, 3, padding="same", activation="relu"),
            layers.MaxPooling2D(),
        ]
    stack += [layers.Flatten(), layers.Dropout(FEATURE_DROPOUT)]
    return keras.Sequential(stack, name="base")
