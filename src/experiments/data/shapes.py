"""Synthetic shapes: a four-class image folder drawn on first use, for runs with no download."""

from __future__ import annotations

import json
import logging
import math
import os
import shutil
import tempfile
import uuid
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from experiments.data import image_folder
from experiments.data.splits import Splits
from experiments.errors import DataError

log = logging.getLogger(__name__)

CLASSES = ("circle", "square", "triangle", "star")
DEFAULT_ROOT = Path("data/shapes")
# The drawings stay the same whatever the run's seed, which only splits them.
GENERATION_SEED = 0
MARKER = ".complete"
SUPERSAMPLE = 4  # drawn larger, then shrunk: smooth edges
MIN_CONTRAST = 80  # in luminance, so the shape still shows in grayscale


def load(cfg, seed: int) -> Splits:
    """The shapes under ``cfg.root`` (default ``data/shapes``), generated if missing, split."""
    root = Path(getattr(cfg, "root", None) or DEFAULT_ROOT).expanduser().absolute()
    per_class = cfg.per_class
    if not is_complete(root, per_class, cfg.image_size, GENERATION_SEED):
        log.info(
            "Generating %d synthetic images per shape at %dx%d into %s",
            per_class,
            cfg.image_size,
            cfg.image_size,
            root,
        )
        generate(root, per_class, cfg.image_size, GENERATION_SEED)
    return image_folder.load_folder(root, cfg, seed, source=f"synthetic shapes ({root})")


def is_complete(root: Path, per_class: int, size: int, seed: int) -> bool:
    """Whether ``root`` holds a finished generation with these settings."""
    try:
        marker = json.loads((root / MARKER).read_text())
    except (OSError, ValueError):
        return False
    return marker == {"per_class": per_class, "size": size, "seed": seed}


def generate(root: Path, per_class: int, size: int, seed: int) -> Path:
    """Draw ``per_class`` images of each shape into ``root/<class>/<i>.png``; return ``root``.

    Written into a hidden sibling folder that replaces ``root`` only once complete, so an
    interrupted generation leaves no half-filled dataset behind.
    """
    root = Path(root)
    _check_replaceable(root)
    root.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{root.name}.", dir=root.parent))
    try:
        staging.chmod(0o755)  # mkdtemp's 0700 would follow the folder into place
        for k, name in enumerate(CLASSES):
            (staging / name).mkdir()
            for i in range(per_class):
                # One generator per image: the i-th image does not depend on per_class.
                rng = np.random.default_rng((seed, k, i))
                draw(name, size, rng).save(staging / name / f"{i}.png")
        marker = {"per_class": per_class, "size": size, "seed": seed}
        (staging / MARKER).write_text(json.dumps(marker))  # last: it vouches for the rest
        _swap_in(staging, root, per_class, size, seed)
    finally:
        shutil.rmtree(staging, ignore_errors=True)  # gone already when the swap succeeded
    return root


def draw(shape: str, size: int, rng: np.random.Generator) -> Image.Image:
    """One ``size``×``size`` RGB image of ``shape`` in random colours, size, place and angle."""
    big = size * SUPERSAMPLE
    background = _colour(rng)
    image = Image.new("RGB", (big, big), background)
    pen = ImageDraw.Draw(image)
    fill = _contrasting(background, rng)
    outline = _outline(shape, big, rng)
    if shape == "circle":
        pen.ellipse(_bounds(outline), fill=fill)
    else:
        pen.polygon(outline, fill=fill)
    return image.resize((size, size), Image.LANCZOS)


def box(shape: str, size: int, rng: np.random.Generator) -> tuple[float, float, float, float]:
    """The bounding box ``(left, top, right, bottom)``, in pixels of the ``size``×``size``
    image, of the shape ``draw`` draws with a generator in the same state as ``rng``."""
    big = size * SUPERSAMPLE
    _contrasting(_colour(rng), rng)  # the colours, drawn first, as draw does
    left, top, right, bottom = _bounds(_outline(shape, big, rng))
    return left / SUPERSAMPLE, top / SUPERSAMPLE, right / SUPERSAMPLE, bottom / SUPERSAMPLE


def _outline(shape: str, big: int, rng: np.random.Generator) -> list[tuple[float, float]]:
    """The shape's corners (a circle: its bounding square's two corners), at random."""
    radius = rng.uniform(0.22, 0.42) * big
    cx, cy = rng.uniform(radius, big - radius, size=2)
    if shape == "circle":
        return [(cx - radius, cy - radius), (cx + radius, cy + radius)]
    return _vertices(shape, cx, cy, radius, rng.uniform(0, 2 * math.pi))


def _bounds(points: list[tuple[float, float]]) -> tuple[float, float, float, float]:
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    return min(xs), min(ys), max(xs), max(ys)


def _vertices(shape: str, cx: float, cy: float, radius: float, angle: float):
    if shape == "star":  # five points, alternating with inner corners
        radii = [radius if k % 2 == 0 else radius * 0.42 for k in range(10)]
    else:
        radii = [radius] * {"square": 4, "triangle": 3}[shape]
    step = 2 * math.pi / len(radii)
    return [
        (cx + r * math.cos(angle + k * step), cy + r * math.sin(angle + k * step))
        for k, r in enumerate(radii)
    ]


def _colour(rng: np.random.Generator) -> tuple[int, int, int]:
    return tuple(int(v) for v in rng.integers(0, 256, 3))


def _luminance(colour: tuple[int, int, int]) -> float:
    red, green, blue = colour
    return 0.299 * red + 0.587 * green + 0.114 * blue


def _contrasting(
    background: tuple[int, int, int], rng: np.random.Generator
) -> tuple[int, int, int]:
    """A random colour that stands out from ``background``, in colour and in grayscale."""
    for _ in range(100):
        colour = _colour(rng)
        if abs(_luminance(colour) - _luminance(background)) >= MIN_CONTRAST:
            return colour
    return (0, 0, 0) if _luminance(background) > 127 else (255, 255, 255)


def _check_replaceable(root: Path) -> None:
    """Refuse to overwrite a folder that is not an earlier (maybe interrupted) generation."""
    if not root.exists():
        return
    if not root.is_dir():
        raise DataError(f"{root} is a file: point dataset.root at a folder for the shapes")
    names = {entry.name for entry in root.iterdir()}
    if MARKER in names or names <= set(CLASSES):
        return
    raise DataError(
        f"{root} is not a generated shapes folder (it has no {MARKER} marker) and will not be "
        "overwritten: point dataset.root at a new folder, or empty this one"
    )


def _swap_in(staging: Path, root: Path, per_class: int, size: int, seed: int) -> None:
    """Move the finished ``staging`` folder to ``root``, replacing an older generation."""
    old = root.with_name(f".{root.name}.old-{uuid.uuid4().hex}")
    if root.exists():
        os.replace(root, old)
    try:
        os.replace(staging, root)
    except OSError:
        # Another run put its own generation in place meanwhile: fine if it is the same one.
        if not is_complete(root, per_class, size, seed):
            raise
    shutil.rmtree(old, ignore_errors=True)
