"""A Grad-CAM map drawn over the raw image: the image in grey, the map in a colour scale."""

from __future__ import annotations

import numpy as np
from PIL import Image

ALPHA = 0.45  # the map's share of each pixel


def overlay(image: np.ndarray, cam: np.ndarray, scale: int = 1) -> Image.Image:
    """``image`` (h, w, channels) in 0-255 with ``cam`` (h, w) in [0, 1] on top, RGB."""
    from matplotlib import colormaps

    pixels = np.asarray(image, np.float32)
    grey = pixels.mean(axis=-1) if pixels.ndim == 3 else pixels
    base = np.repeat(grey[..., None], 3, axis=-1)
    heat = colormaps["jet"](np.clip(cam, 0, 1))[..., :3] * 255
    mixed = ((1 - ALPHA) * base + ALPHA * heat).clip(0, 255).astype(np.uint8)
    picture = Image.fromarray(mixed)
    if scale > 1:
        picture = picture.resize((picture.width * scale, picture.height * scale), Image.NEAREST)
    return picture
