"""Any folder of class sub-folders, pre-split into train/val/test or split here with the seed."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from experiments.data import image_cache, listing
from experiments.data.images import IMAGE_SUFFIXES
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
    """The class sub-folders of ``root`` at ``cfg.image_size``, split with ``seed``.

    With ``cfg.cache`` the pixels stay in the on-disk cache and each split is a
    ``DiskArray`` of its rows, read batch by batch; without, they are arrays in memory.
    The same files, seed and settings give the same splits either way.
    """
    _check_root(root)
    listing = _list_pre_split(root) if (root / "train").is_dir() else _list_flat(root)
    decoded = _decoded(listing, cfg)
    for row, reason in sorted(decoded.reasons.items()):
        log.warning("Skipping %s: %s", listing.paths[row], reason)
    readable = np.ones(len(listing.paths), bool)
    readable[list(decoded.reasons)] = False
    split = _split_pre_split if listing.pre_split else _split_flat
    parts = split(listing, readable, cfg, seed)
    arrays = []
    for name in SPLIT_FOLDERS:
        rows, labels = parts[name]
        arrays += [decoded.images[rows], labels]  # a view of the cache, or a copy in memory
    splits = Splits(
        *arrays,
        class_names=listing.class_names,
        source=source,
        skipped=len(decoded.reasons),
        cache_key=decoded.key,
    )
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


def is_class_folder(entry: Path) -> bool:
    """A sub-folder that holds a class: not hidden, not a tool's metadata folder (logged)."""
    return listing.is_image_folder(entry)


def _class_folders(folder: Path) -> dict[str, Path]:
    """The class sub-folders of ``folder`` by name, sorted; at least two, or DataError."""
    found = {entry.name: entry for entry in sorted(folder.iterdir()) if is_class_folder(entry)}
    if len(found) < 2:
        raise DataError(
            f"{folder} needs at least 2 class sub-folders of images, found {len(found)} "
            f"({', '.join(found) or 'none'})"
        )
    return found


def _image_files(folder: Path) -> list[Path]:
    """The image files of a class folder, by name: what ``predict`` lists in it too."""
    return listing.image_files(folder)


@dataclass
class Listing:
    """A folder's image files in order (split folder, class, name) and the class of each."""

    root: Path
    class_names: list[str]
    pre_split: bool  # root/{train,val,test}/<class>/*, else root/<class>/*
    paths: list[Path] = field(default_factory=list)
    labels: list[int] = field(default_factory=list)
    # (split folder or "", class) -> the class folder and the span of its files in ``paths``
    folders: dict[tuple[str, int], tuple[Path, int, int]] = field(default_factory=dict)

    def add(self, part: str, label: int, folder: Path) -> None:
        files = _image_files(folder)
        self.folders[part, label] = (folder, len(self.paths), len(self.paths) + len(files))
        self.paths += files
        self.labels += [label] * len(files)

    def rows(self, part: str, label: int, readable: np.ndarray) -> np.ndarray:
        """The readable rows of one class folder, in file order; DataError if there are none."""
        folder, start, end = self.folders[part, label]
        rows = start + np.flatnonzero(readable[start:end])
        if len(rows) == 0:
            raise _unreadable(folder)
        return rows


def _unreadable(folder: Path) -> DataError:
    files = _image_files(folder)
    detail = (
        f"none of its {len(files)} image files could be decoded (see the warnings above)"
        if files
        else f"it holds no files ending in {', '.join(sorted(IMAGE_SUFFIXES))}"
    )
    return DataError(f"class folder {folder} has no readable image: {detail}")


def _list_pre_split(root: Path) -> Listing:
    train = _class_folders(root / "train")
    names = list(train)
    listing = Listing(root, names, pre_split=True)
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
        for label, name in enumerate(names):
            listing.add(split, label, found[name])
    return listing


def _list_flat(root: Path) -> Listing:
    folders = _class_folders(root)
    for name in folders:
        if name in SPLIT_FOLDERS:
            raise DataError(
                f"{root} has a {name}/ folder but no train/ folder: a pre-split dataset needs "
                f"{root / 'train'}, and a flat one cannot have a class called {name!r}"
            )
    listing = Listing(root, list(folders), pre_split=False)
    for label, folder in enumerate(folders.values()):
        listing.add("", label, folder)
    return listing


def _decoded(listing: Listing, cfg) -> image_cache.Decoded:
    """Every listed file decoded: from the cache (built on first use), or into memory."""
    size, channels = cfg.image_size, cfg.channels
    if not cfg.get("cache", False):
        return image_cache.in_memory(listing.paths, size, channels)
    stats = [(st.st_size, st.st_mtime_ns) for st in map(os.stat, listing.paths)]
    files = image_cache.Files(listing.root, listing.paths, stats, size, channels)
    return image_cache.cached(files, Path(cfg.cache_dir).expanduser().absolute())


def _shuffled(rows: np.ndarray, labels: np.ndarray, seed: int):
    """The training images in an order of ``seed``'s, rather than class by class."""
    order = np.random.default_rng(seed).permutation(len(rows))
    return rows[order], labels[order]


def _split_pre_split(listing: Listing, readable: np.ndarray, cfg, seed: int) -> dict:
    """The rows and labels of each split: its folder's, or held out of train/ with ``seed``."""
    parts = {}
    for split in dict.fromkeys(part for part, _ in listing.folders):
        rows = np.concatenate(
            [listing.rows(split, k, readable) for k in range(len(listing.class_names))]
        )
        parts[split] = (rows, np.asarray(listing.labels, np.int64)[rows])
    rows, labels = parts["train"]
    if "test" not in parts:
        log.info(
            "%s has no test/ folder: holding out %.0f%% of train/",
            listing.root,
            100 * cfg.test_split,
        )
        rows, labels, *parts["test"] = hold_out(rows, labels, cfg.test_split, seed)
    if "val" not in parts:
        rows, labels, *parts["val"] = hold_out(rows, labels, cfg.val_split, seed)
    parts["train"] = _shuffled(rows, labels, seed)
    return parts


MIN_PER_CLASS = 3  # one image each for training, validation and test


def _split_counts(n: int, val_split: float, test_split: float) -> tuple[int, int]:
    """How many of a class's ``n`` images go to validation and to test."""
    n_val, n_test = round(n * val_split), round(n * test_split)
    if n >= MIN_PER_CLASS:  # so every class shows up in every split, even in a tiny folder
        n_val, n_test = max(n_val, int(val_split > 0)), max(n_test, int(test_split > 0))
    n_test = min(n_test, max(n - 1, 0))  # keep at least one image of the class for training
    n_val = min(n_val, max(n - 1 - n_test, 0))
    return n_val, n_test


def _split_flat(listing: Listing, readable: np.ndarray, cfg, seed: int) -> dict:
    """The rows and labels of each split, every class cut by its own seeded permutation."""
    chosen = {split: [] for split in SPLIT_FOLDERS}
    for k in range(len(listing.class_names)):
        rows = listing.rows("", k, readable)
        # Each class by its own permutation: stratified, and one class does not move another.
        order = rows[np.random.default_rng((seed, k)).permutation(len(rows))]
        n_val, n_test = _split_counts(len(rows), cfg.val_split, cfg.test_split)
        if len(rows) < MIN_PER_CLASS and (cfg.val_split > 0 or cfg.test_split > 0):
            log.warning(
                "Class %r has %d readable image(s), fewer than %d: it is trained on, but has "
                "none to validate or test, so the reported accuracy leaves it out. Give it at "
                "least %d images",
                listing.class_names[k],
                len(rows),
                MIN_PER_CLASS,
                MIN_PER_CLASS,
            )
        chosen["test"].append(order[:n_test])
        chosen["val"].append(order[n_test : n_test + n_val])
        chosen["train"].append(order[n_test + n_val :])
    labels = np.asarray(listing.labels, np.int64)
    parts = {}
    for split, pieces in chosen.items():
        rows = np.concatenate(pieces).astype(np.int64)
        parts[split] = (rows, labels[rows])
    parts["train"] = _shuffled(*parts["train"], seed)
    return parts
