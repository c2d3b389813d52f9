"""Datasets: each loader returns the same ``Splits`` of raw uint8 images, whatever its source."""

from __future__ import annotations

import importlib
from dataclasses import dataclass

import numpy as np

from experiments.errors import ConfigError, DataError


@dataclass
class Splits:
    """Train, validation and test images as uint8 arrays of shape (n, height, width, channels)."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    class_names: list[str]
    source: str  # where the data came from, for the log and the run's tags
    skipped: int = 0  # files that could not be decoded and were left out

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return tuple(self.x_train.shape[1:])

    @property
    def num_classes(self) -> int:
        return len(self.class_names)


def load(dataset_cfg, seed: int, channels: int | None = None) -> Splits:
    """Load dataset ``dataset_cfg.name``, split with ``seed``.

    ``channels`` overrides ``dataset.channels`` (a backbone that needs RGB gets RGB), and
    ``dataset.classes`` keeps only the named classes, relabelled in the order given.
    """
    from omegaconf import OmegaConf

    try:
        module = importlib.import_module(f"experiments.data.{dataset_cfg.name}")
    except ModuleNotFoundError:
        raise ConfigError("dataset.name", f"unknown dataset {dataset_cfg.name!r}") from None
    if channels is not None and channels != dataset_cfg.channels:
        dataset_cfg = OmegaConf.merge(dataset_cfg, {"channels": channels})
    if not dataset_cfg.classes:
        splits = module.load(dataset_cfg, seed)
    else:
        # Choose the classes first, then cap: dataset.limit counts the kept classes' images.
        splits = module.load(OmegaConf.merge(dataset_cfg, {"limit": None}), seed)
        splits = keep_classes(splits, list(dataset_cfg.classes))
        splits = cap(splits, dataset_cfg.limit, dataset_cfg.val_split, seed)
    _check_not_empty(splits, dataset_cfg.name)
    return splits


def _check_not_empty(splits: Splits, name: str) -> None:
    """Every split needs images: an empty one fails only after training, or silently."""
    sizes = {part: len(getattr(splits, f"y_{part}")) for part in ("train", "val", "test")}
    empty = [part for part, size in sizes.items() if size == 0]
    if empty:
        raise DataError(
            f"dataset={name}: the {' and '.join(empty)} split is empty ({sizes}); add images, "
            "raise dataset.val_split / dataset.test_split, or provide val/ and test/ folders"
        )


def cap(splits: Splits, limit: int | None, val_split: float, seed: int) -> Splits:
    """At most ``limit`` training images, and validation images in proportion (seeded)."""
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


def hold_out(x: np.ndarray, y: np.ndarray, val_split: float, limit: int | None, seed: int):
    """Shuffle with ``seed`` and split off a validation set; ``limit`` caps the training part.

    The validation set keeps the same proportion to the (capped) training set, so a quick
    run with ``limit`` does not spend its time validating on tens of thousands of images.
    """
    order = np.random.default_rng(seed).permutation(len(x))
    n_val = max(1, round(len(x) * val_split))
    val_idx, train_idx = order[:n_val], order[n_val:]
    if limit is not None and limit < len(train_idx):
        train_idx = train_idx[:limit]
        val_idx = val_idx[: max(1, round(limit * val_split / (1 - val_split)))]
    return x[train_idx], y[train_idx], x[val_idx], y[val_idx]
