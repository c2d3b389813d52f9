"""Datasets: each loader returns the same ``Splits`` of raw uint8 images, whatever its source."""

from __future__ import annotations

import importlib
from dataclasses import dataclass

import numpy as np

from experiments.errors import ConfigError


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


def load(dataset_cfg, seed: int) -> Splits:
    """Load the dataset named by ``dataset_cfg.name`` and split it with ``seed``."""
    try:
        module = importlib.import_module(f"experiments.datasets.{dataset_cfg.name}")
    except ModuleNotFoundError:
        raise ConfigError("dataset.name", f"unknown dataset {dataset_cfg.name!r}") from None
    return module.load(dataset_cfg, seed)


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
