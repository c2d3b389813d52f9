"""Any folder of class sub-folders, pre-split into train/val/test or split here with the seed."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from experiments.data.images import IMAGE_SUFFIXES, decode, is_image_file
from experiments.data.splits import Splits, hold_out
from experiments.errors import ConfigError, DataError

log = logging.getLogger(__name__)

SPLIT_FOLDERS = ("train", "val", "test")


def load(cfg, seed: int) -> Splits:
    """The images under ``cfg.root``, one class per sub-folder, split with ``seed``."""
    if cfg.root is None:
        raise ConfigError(
            "dataset.root", "the image_folder dataset needs the folder of class sub-folders"
        )
    root = Path(cfg.root).expanduser().absolute()
    return load_folder(root, cfg, seed, source=f"image folder {root}")


def load_folder(root: Path, cfg, seed: int, source: str) -> Splits:
    """Decode the class sub-folders of ``root`` at ``cfg.image_size`` and split them."""
    _check_root(root)
    if (root / "train").is_dir():
        splits = _load_pre_split(root, cfg, seed, source)
    else:
        splits = _load_flat(root, cfg, seed, source)
    log.info(
        "%s: %d classes, %d train / %d val / %d test images",
        source,
        splits.num_classes,
        len(splits.y_train),
        len(splits.y_val),
        len(splits.y_test),
    )
    if splits.skipped:
        log.warning("%s: skipped %d files that could not be decoded", source, splits.skipped)
    return splits


def _check_root(root: Path) -> None:
    if not root.exists():
        raise DataError(f"{root} does not exist: point dataset.root at a folder of class folders")
    if not root.is_dir():
        raise DataError(f"{root} is not a folder: point dataset.root at a folder of class folders")
    visible = [entry for entry in root.iterdir() if not entry.name.startswith(".")]
    if not any(entry.is_file() or is_class_folder(entry) for entry in visible):
        raise DataError(f"{root} is empty: put one sub-folder of images per class in it")


# Folders that tools put beside the classes: a macOS zip, a Synology NAS, Windows, Python.
NOT_CLASSES = frozenset(
    {"__MACOSX", "@eaDir", "$RECYCLE.BIN", "System Volume Information", "__pycache__"}
)
_reported: set[Path] = set()  # ignored folders already logged, once each


def is_class_folder(entry: Path) -> bool:
    """A sub-folder that holds a class: not hidden, not a tool's metadata folder.

    Each folder set aside is logged once, however often it is listed.
    """
    if not entry.is_dir():
        return False
    if entry.name.startswith(".") or entry.name in NOT_CLASSES:
        if entry not in _reported:
            _reported.add(entry)
            kind = "hidden" if entry.name.startswith(".") else "a metadata folder, not a class"
            log.info("Ignored %s (%s)", entry, kind)
        return False
    return True


def _class_folders(folder: Path) -> dict[str, Path]:
    """The class sub-folders of ``folder`` by name, sorted; at least two, or DataError."""
    found = {entry.name: entry for entry in sorted(folder.iterdir()) if is_class_folder(entry)}
    if len(found) < 2:
        raise DataError(
            f"{folder} needs at least 2 class sub-folders of images, found {len(found)} "
            f"({', '.join(found) or 'none'})"
        )
    return found


def _read_class(folder: Path, size: int, channels: int) -> tuple[list[np.ndarray], int]:
    """The decodable images of one class folder and the count of those that failed."""
    files = [path for path in sorted(folder.iterdir()) if path.is_file() and is_image_file(path)]
    images = [decode(path, size, channels) for path in files]
    good = [image for image in images if image is not None]
    if not good:
        detail = (
            f"none of its {len(files)} image files could be decoded (see the warnings above)"
            if files
            else f"it holds no files ending in {', '.join(sorted(IMAGE_SUFFIXES))}"
        )
        raise DataError(f"class folder {folder} has no readable image: {detail}")
    return good, len(files) - len(good)


def _read_classes(folders: list[Path], size: int, channels: int):
    """Images and int64 labels of the class folders, in order, and the count of skipped files."""
    per_class, skipped = [], 0
    for folder in folders:
        images, failed = _read_class(folder, size, channels)
        per_class.append(images)
        skipped += failed
    return per_class, skipped


def _stack(images: list[np.ndarray], labels: list[int], size: int, channels: int):
    if not images:
        return np.empty((0, size, size, channels), np.uint8), np.empty(0, np.int64)
    return np.stack(images), np.asarray(labels, np.int64)


def _shuffled(x: np.ndarray, y: np.ndarray, seed: int):
    """The training images in an order of ``seed``'s, rather than class by class."""
    order = np.random.default_rng(seed).permutation(len(x))
    return x[order], y[order]


def _load_pre_split(root: Path, cfg, seed: int, source: str) -> Splits:
    size, channels = cfg.image_size, cfg.channels
    train = _class_folders(root / "train")
    names = list(train)
    arrays, skipped = {}, 0
    for split in SPLIT_FOLDERS:
        folder = root / split
        if not folder.is_dir():
            continue
        found = train if split == "train" else _class_folders(folder)
        if list(found) != names:
            missing, extra = sorted(set(names) - set(found)), sorted(set(found) - set(names))
            raise DataError(
                f"{folder} must have the same class folders as {root / 'train'}: "
                f"missing {missing or 'none'}, extra {extra or 'none'}"
            )
        per_class, failed = _read_classes([found[name] for name in names], size, channels)
        skipped += failed
        images = [image for class_images in per_class for image in class_images]
        labels = [k for k, class_images in enumerate(per_class) for _ in class_images]
        arrays[split] = _stack(images, labels, size, channels)
    x_train, y_train = arrays["train"]
    if "test" not in arrays:
        log.info("%s has no test/ folder: holding out %.0f%% of train/", root, 100 * cfg.test_split)
        x_train, y_train, *arrays["test"] = hold_out(x_train, y_train, cfg.test_split, seed)
    if "val" not in arrays:
        x_train, y_train, *arrays["val"] = hold_out(x_train, y_train, cfg.val_split, seed)
    x_train, y_train = _shuffled(x_train, y_train, seed)
    return Splits(
        x_train,
        y_train,
        *arrays["val"],
        *arrays["test"],
        class_names=names,
        source=source,
        skipped=skipped,
    )


def _split_counts(n: int, val_split: float, test_split: float) -> tuple[int, int]:
    """How many of a class's ``n`` images go to validation and to test."""
    n_val, n_test = round(n * val_split), round(n * test_split)
    if n >= 3:  # so every class shows up in every split, even in a tiny folder
        n_val, n_test = max(n_val, int(val_split > 0)), max(n_test, int(test_split > 0))
    n_test = min(n_test, max(n - 1, 0))  # keep at least one image of the class for training
    n_val = min(n_val, max(n - 1 - n_test, 0))
    return n_val, n_test


def _load_flat(root: Path, cfg, seed: int, source: str) -> Splits:
    size, channels = cfg.image_size, cfg.channels
    folders = _class_folders(root)
    names = list(folders)
    for name in names:
        if name in SPLIT_FOLDERS:
            raise DataError(
                f"{root} has a {name}/ folder but no train/ folder: a pre-split dataset needs "
                f"{root / 'train'}, and a flat one cannot have a class called {name!r}"
            )
    per_class, skipped = _read_classes([folders[name] for name in names], size, channels)
    parts = {split: ([], []) for split in SPLIT_FOLDERS}
    for k, images in enumerate(per_class):
        # Each class by its own permutation: stratified, and one class does not move another.
        order = np.random.default_rng((seed, k)).permutation(len(images))
        n_val, n_test = _split_counts(len(images), cfg.val_split, cfg.test_split)
        chosen = {
            "test": order[:n_test],
            "val": order[n_test : n_test + n_val],
            "train": order[n_test + n_val :],
        }
        for split, indices in chosen.items():
            parts[split][0].extend(images[i] for i in indices)
            parts[split][1].extend([k] * len(indices))
    x_train, y_train = _shuffled(*_stack(*parts["train"], size, channels), seed)
    return Splits(
        x_train,
        y_train,
        *_stack(*parts["val"], size, channels),
        *_stack(*parts["test"], size, channels),
        class_names=names,
        source=source,
        skipped=skipped,
    )
