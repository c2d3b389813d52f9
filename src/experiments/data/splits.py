"""The train/validation/test ``Splits`` every dataset returns, and the ways to cut them."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np

from experiments.data.disk_array import DiskArray
from experiments.errors import ConfigError


@dataclass
class Splits:
    """Train, validation and test images of shape (n, height, width, channels), uint8.

    Each ``x_*`` is an array in memory, or a ``DiskArray`` of an image cache's rows.
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    class_names: list[str]
    source: str  # where the data came from, for the log and the run's tags
    skipped: int = 0  # files that could not be decoded and were left out
    cache_key: str | None = None  # the image cache's key, when the pixels stay on disk there

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return tuple(self.x_train.shape[1:])

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def fingerprint(self, part: str) -> str | None:
        """A digest of ``part``'s images and labels that reads no pixel: the image cache's
        key and the rows it takes. None for images in memory, which MLflow digests itself."""
        x, y = getattr(self, f"x_{part}"), getattr(self, f"y_{part}")
        if not isinstance(x, DiskArray):
            return None
        digest = hashlib.blake2b(self.cache_key.encode(), digest_size=8)
        digest.update(x.rows.tobytes())
        digest.update(np.asarray(y, np.int64).tobytes())
        return digest.hexdigest()

    def digest(self, part: str) -> str:
        """Which images and labels ``part`` holds, in order: equal digests, the same set.

        Runs scored on sets with the same digest can be compared image by image.
        """
        found = self.fingerprint(part)
        if found is not None:
            return found
        x, y = getattr(self, f"x_{part}"), getattr(self, f"y_{part}")
        digest = hashlib.blake2b(np.ascontiguousarray(x).tobytes(), digest_size=8)
        digest.update(np.asarray(y, np.int64).tobytes())
        return digest.hexdigest()


def limit_training(splits: Splits, limit: int | None, val_split: float, seed: int) -> Splits:
    """``dataset.limit``: at most ``limit`` training images, validation in proportion (seeded).

    The validation set keeps its share of the (capped) training set, so a quick run with
    ``limit`` does not spend its time validating on tens of thousands of images.
    """
    if limit is None or limit >= len(splits.x_train):
        return splits
    rng = np.random.default_rng(seed)
    keep = rng.permutation(len(splits.x_train))[:limit]
    splits.x_train, splits.y_train = splits.x_train[keep], splits.y_train[keep]
    n_val = max(1, round(limit * val_split / (1 - val_split)))
    if n_val < len(splits.x_val):
        keep = rng.permutation(len(splits.x_val))[:n_val]
        splits.x_val, splits.y_val = splits.x_val[keep], splits.y_val[keep]
    return splits


def keep_classes(splits: Splits, wanted: list[str]) -> Splits:
    """Only the classes in ``wanted`` (names, or indices as strings), relabelled 0..k-1."""
    indices = []
    for item in wanted:
        item = str(item)
        if item in splits.class_names:
            indices.append(splits.class_names.index(item))
        elif item.isdigit() and int(item) < len(splits.class_names):
            indices.append(int(item))
        else:
            raise ConfigError(
                "dataset.classes", f"unknown class {item!r}; known: {splits.class_names}"
            )
    if len(set(indices)) != len(indices):
        raise ConfigError("dataset.classes", f"a class is named twice in {wanted}")
    if len(indices) < 2:
        raise ConfigError("dataset.classes", "keep at least 2 classes")
    relabel = np.full(len(splits.class_names), -1, np.int64)
    relabel[indices] = np.arange(len(indices))
    for part in ("train", "val", "test"):
        x, y = getattr(splits, f"x_{part}"), getattr(splits, f"y_{part}")
        keep = relabel[y] >= 0
        setattr(splits, f"x_{part}", x[keep])
        setattr(splits, f"y_{part}", relabel[y[keep]])
    splits.class_names = [splits.class_names[i] for i in indices]
    return splits


def hold_out(x: np.ndarray, y: np.ndarray, share: float, seed: int):
    """Shuffle with ``seed`` and split off ``share`` of the images (at least one).

    Returns the rest and the part held out, as ``x, y, x_held, y_held``.
    """
    order = np.random.default_rng(seed).permutation(len(x))
    n_held = max(1, round(len(x) * share))
    held, kept = order[:n_held], order[n_held:]
    return x[kept], y[kept], x[held], y[held]
