"""Data augmentation as Keras preprocessing layers: inside the model, active only in training."""

from __future__ import annotations


def is_active(cfg) -> bool:
    return bool(cfg.flip or cfg.rotation or cfg.zoom or cfg.contrast)


def augmentation(cfg):
    """A Sequential of the random layers ``cfg`` turns on, or None when none is."""
    if not is_active(cfg):
        return None
    import keras
    from keras import layers

    parts = []
    if cfg.flip:
        parts.append(layers.RandomFlip("horizontal"))
    if cfg.rotation:
        parts.append(layers.RandomRotation(cfg.rotation))
    if cfg.zoom:
        parts.append(layers.RandomZoom(cfg.zoom))
    if cfg.contrast:
        parts.append(layers.RandomContrast(cfg.contrast))
    return keras.Sequential(parts, name="augment")
