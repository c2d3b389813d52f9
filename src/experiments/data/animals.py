"""The reference report's four classes (avocado, cat, cow, crab) from ``data/animals/<class>/*``."""

from __future__ import annotations

from pathlib import Path

from experiments.data import image_folder
from experiments.data.splits import Splits
from experiments.errors import DataError

DEFAULT_ROOT = Path("data/animals")


def load(cfg, seed: int) -> Splits:
    root = Path(cfg.root or DEFAULT_ROOT).expanduser().absolute()
    if not root.exists():
        raise DataError(
            f"{root} does not exist: put the reference report's images there, one folder per "
            "class (data/animals/cat/*.jpg, ...), point dataset.root at them, or try the "
            "synthetic dataset=shapes, which needs no download"
        )
    return image_folder.load_folder(root, cfg, seed, source=f"animals image folder {root}")
