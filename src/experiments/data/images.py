"""Decode one image file into a fixed-size uint8 array, or skip it with a warning."""

from __future__ import annotations

import logging
import os
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".gif", ".bmp", ".webp", ".tif", ".tiff"})
# Far more than a classifier needs, far less than what exhausts memory: an image whose header
# claims more is refused before a single pixel is decoded.
MAX_PIXELS = 64_000_000
# Transparent pixels are composited on white: dropping alpha would expose whatever colour the
# encoder left under them, often black, which is noise to the classifier.
BACKGROUND = (255, 255, 255, 255)
MODES = {1: "L", 3: "RGB"}
HIGH_DEPTH_MODES = ("I;16", "I;16L", "I;16B", "I;16N", "I", "F")


def is_image_file(path: str | Path) -> bool:
    """Whether ``path`` (or a bare file name) has an image suffix (any case) and is not hidden."""
    name = os.path.basename(path)
    return not name.startswith(".") and os.path.splitext(name)[1].lower() in IMAGE_SUFFIXES


def decode(path: str | Path, size: int, channels: int) -> np.ndarray | None:
    """The image as a uint8 (size, size, channels) array, or None, with a warning, if unreadable."""
    pixels, reason = decode_or_reason(path, size, channels)
    if pixels is None:
        log.warning("Skipping %s: %s", path, reason)
    return pixels


def decode_or_reason(path: str | Path, size: int, channels: int) -> tuple[np.ndarray | None, str]:
    """``(pixels, "")``, or ``(None, why)`` for a file that cannot be read: never raises on one."""
    if channels not in MODES:
        raise ValueError(f"channels must be 1 or 3, not {channels!r}")
    try:
        image = _open(Path(path), size)
        image = _to_mode(image, MODES[channels]).resize((size, size), Image.BILINEAR)
    except Exception as exc:  # Pillow's plugins raise all sorts on a bad file: skip it, never crash
        return None, _reason(exc)
    array = np.asarray(image, dtype=np.uint8)
    return (array[..., np.newaxis] if channels == 1 else array), ""


def _open(path: Path, size: int) -> Image.Image:
    """The first frame, fully decoded and upright; raises on anything unreadable."""
    if path.stat().st_size == 0:
        raise OSError("the file is empty")
    with warnings.catch_warnings():
        # Pillow only warns below twice its own limit; a warning must stop us as well.
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        with Image.open(path) as image:
            width, height = image.size
            if width * height > MAX_PIXELS:
                raise Image.DecompressionBombError(
                    f"{width}x{height} pixels is over the limit of {MAX_PIXELS}"
                )
            image.draft(None, (size, size))  # JPEG decodes straight to a smaller scale: faster
            image.load()  # inside the try, so a truncated file fails here and not later
            return ImageOps.exif_transpose(image)


def _to_mode(image: Image.Image, mode: str) -> Image.Image:
    """``image`` in ``mode`` ("L" or "RGB"), with alpha composited and deep grayscale scaled."""
    if image.mode in HIGH_DEPTH_MODES:
        image = _to_8bit(image)
    if image.has_transparency_data:
        background = Image.new("RGBA", image.size, BACKGROUND)
        image = Image.alpha_composite(background, image.convert("RGBA"))
    if image.mode not in ("L", "RGB"):
        image = image.convert("RGB")  # CMYK, YCbCr, 1-bit...: via RGB, which every mode reaches
    return image.convert(mode)


def _to_8bit(image: Image.Image) -> Image.Image:
    """16-bit, 32-bit and float grayscale scaled to 0-255; Pillow's own convert would clip."""
    values = np.nan_to_num(np.asarray(image, dtype=np.float64))
    low, high = float(values.min()), float(values.max())
    if image.mode.startswith("I;16") or (image.mode == "I" and low >= 0 and high <= 65535):
        # By bit depth, not by the image's own range, so brightness compares across images.
        # Some Pillow versions and TIFF files give 16-bit data as mode "I".
        values = values * (255 / 65535)
    elif image.mode == "F" and low >= 0 and high <= 1:
        values = values * 255
    elif high > low:  # no depth to go by: stretch the image's own range
        values = (values - low) * (255 / (high - low))
    return Image.fromarray(np.clip(np.rint(values), 0, 255).astype(np.uint8))


def _reason(exc: Exception) -> str:
    if isinstance(exc, Image.DecompressionBombError | Image.DecompressionBombWarning):
        return f"cannot decode image: refused as a possible decompression bomb ({exc})"
    return f"cannot decode image ({type(exc).__name__}: {exc})"
