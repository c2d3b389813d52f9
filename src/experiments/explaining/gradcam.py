"""Grad-CAM (Selvaraju et al. 2017) with ``tf.GradientTape``, on the model as trained.

Every model the project builds is ``image -> [augment] -> preprocess -> base -> head``, so
the map is taken inside ``base``: the target is its last layer with a spatial output (a
4-D feature map), found automatically or named with ``layer=``. The whole model runs in
inference mode under the tape, the target layer keeping the map it hands on, so the
gradient of the explained class's probability reaches exactly that tensor. The map
is the ReLU of the map's channels weighted by their mean gradient, resized to the image
and scaled to [0, 1]; preprocessing stays inside the model, so it lines up with the raw
pixels.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from experiments.errors import ConfigError


@dataclass
class Explainer:
    """Grad-CAM maps of one model at one layer."""

    model: object  # the whole Keras model
    target: object  # the layer whose output is mapped, inside ``base``

    @property
    def layer(self) -> str:
        return self.target.name

    def maps(self, images: np.ndarray, classes: np.ndarray | None = None):
        """The Grad-CAM map of each image (n, h, w) in [0, 1], the class each explains (the
        predicted one unless ``classes`` says), and the probabilities."""
        import tensorflow as tf

        kept: list = []
        call = self.target.call

        def keeping(*args, **kwargs):  # the map, as the layers after it receive it
            out = call(*args, **kwargs)
            kept.append(out)
            return out

        self.target.call = keeping
        try:
            with tf.GradientTape() as tape:
                probs = self.model(tf.constant(images, tf.float32), training=False)
                chosen = tf.argmax(probs, axis=1) if classes is None else tf.constant(classes)
                score = tf.gather(tf.cast(probs, tf.float32), chosen, axis=1, batch_dims=1)
            fmap = kept[-1]
            grads = tf.cast(tape.gradient(score, fmap), tf.float32)
        finally:
            del self.target.call  # the class's own method again
        weights = tf.reduce_mean(grads, axis=(1, 2), keepdims=True)
        cam = tf.nn.relu(tf.reduce_sum(weights * tf.cast(fmap, tf.float32), axis=-1))[..., None]
        cam = tf.image.resize(cam, images.shape[1:3], method="bilinear")[..., 0].numpy()
        peak = cam.reshape(len(cam), -1).max(axis=1).reshape(-1, 1, 1)
        cam = np.where(peak > 0, cam / np.where(peak > 0, peak, 1), 0.0)
        return cam.astype(np.float32), np.asarray(chosen), np.asarray(probs, np.float32)


def explainer(model, layer: str | None = None) -> Explainer:
    """Grad-CAM for ``model``, at ``layer`` (a name inside its base) or the last spatial map."""
    return Explainer(model, _target(_base(model), layer, model.name))


def _base(model):
    """The nested ``base`` model, or the model itself when it has none (a plain network)."""
    try:
        return model.get_layer("base")
    except ValueError:
        return model


def _target(base, name: str | None, model_name: str):
    if name:
        found = [la for la in _leaves(base) if la.name == name]
        if not found:
            spatial = ", ".join(la.name for la in _spatial(base)[-5:])
            raise ConfigError(
                "layer", f"{model_name} has no layer {name!r}; its last spatial layers: {spatial}"
            )
        return found[0]
    found = _spatial(base)
    if not found:
        raise ConfigError(
            "layer",
            f"{model_name} has no layer with a spatial output (a 4-D feature map), so Grad-CAM "
            "has nothing to map; name one with layer=<name> if a layer of another kind holds one",
        )
    # The last map of any width > 1, and not a pooling of the one before: pooling only
    # coarsens it (the compact CNN's last pooling: 4x4 against its convolution's 8x8, 52 %
    # of the map's mass on the shape against 60 %, tests/test_explain.py).
    wide = [la for la in found if min(la.output.shape[1:3]) > 1] or found
    unpooled = [la for la in wide if "Pooling" not in type(la).__name__]
    return (unpooled or wide)[-1]


def _spatial(base) -> list:
    """The base's layers (nested ones included) whose output is a 4-D feature map, in order."""
    import keras

    out = []
    for layer in _leaves(base):
        if isinstance(layer, keras.layers.InputLayer):
            continue
        try:
            shape = layer.output.shape
        except (AttributeError, ValueError):
            continue
        if len(shape) == 4:
            out.append(layer)
    return out


def _leaves(model):
    for layer in getattr(model, "layers", []):
        if hasattr(layer, "layers"):
            yield from _leaves(layer)
        else:
            yield layer
