"""The frozen base's features, the inputs of head training: computed once, kept on disk.

Running every image through the frozen base is the expensive part of ``phase=transfer``
(and of fine-tuning's warm-up); the head then trains on those features alone. For an
image folder in the image cache, the features of each cached image are kept in a file
beside it, keyed by the backbone, a digest of the extractor's weights, its compute
precision and the image cache's key (which holds the image size): a later run, or
another job of a learning-rate sweep, computes only the images not there yet. The
features are made without augmentation (a run with augmentation does not use them).

Features that fit in ``IN_MEMORY`` bytes are read into memory; larger ones stay on disk
and are streamed batch by batch, like the images.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from experiments import progress
from experiments.data import disk_array, image_cache, stream
from experiments.data.disk_array import DiskArray
from experiments.errors import DiskFullError
from experiments.folders import locked, reserve, space_for

log = logging.getLogger(__name__)

IN_MEMORY = 512 * 2**20  # bytes of features held in memory; beyond, they stay on disk
CHUNK = 512  # images per feature pass between two writes to disk
# A full disk under the features: the setting that chose the folder, and the way out.
SPACE = (
    "dataset.cache_dir",
    "point dataset.cache_dir at a disk with room, or set phase.cache_features=false",
)
VERSION = 1  # bump when what a features file holds changes
FEATURES, DONE = "features.npy", "done.npy"
IMAGES_KEY = "image_cache.key"  # the key of the image cache the features were computed from


@dataclass
class Features:
    train: np.ndarray | DiskArray
    val: np.ndarray | DiskArray
    how: str  # computed | reused | computed for N images, reused for M


def frozen_features(extractor, data, cfg) -> Features:
    """The extractor's outputs for the training and validation images."""
    batch = stream.inference_batch(cfg.trainer.batch_size)
    if data.cache_key is not None:
        home = Path(cfg.dataset.cache_dir).expanduser().absolute() / "features"
        try:
            return _cached(extractor, data, home, cfg.backbone.name, batch)
        except PermissionError as exc:  # a cache shared read-only: its images, not our features
            log.warning(
                "Cannot keep the features in %s (%s): computed for this run only", home, exc
            )
    return Features(
        _computed(extractor, data.x_train, batch),
        _computed(extractor, data.x_val, batch),
        "computed",
    )


def key(extractor, backbone: str, cache_key: str) -> str:
    """What the features depend on: the backbone, every weight, the precision, the images."""
    import keras

    digest = hashlib.blake2b(digest_size=16)
    policy = keras.mixed_precision.global_policy().name
    digest.update(f"{VERSION}\0{backbone}\0{policy}\0{cache_key}".encode())
    for weight in extractor.weights:
        value = np.asarray(weight.numpy())
        digest.update(f"{weight.path}{value.shape}{value.dtype}".encode())
        digest.update(np.ascontiguousarray(value).tobytes())
    return digest.hexdigest()


def _cached(extractor, data, home: Path, backbone: str, batch: int) -> Features:
    """Features from the cache beside the image cache; the missing images' computed first."""
    images = data.x_train
    folder = home / f"{backbone}-{key(extractor, backbone, data.cache_key)[:20]}"
    needed = np.union1d(data.x_train.rows, data.x_val.rows)
    home.mkdir(parents=True, exist_ok=True)
    waiting = f"Waiting for another run computing the features in {folder}"
    with locked(home / f"{folder.name}.lock", waiting):
        done = _done(folder, extractor, images.file_length, data.cache_key)
        missing = needed[~done[needed]]
        if len(missing):
            log.info(
                "Computing the frozen base's features of %d images (%d reused) into %s",
                len(missing),
                len(needed) - len(missing),
                folder,
            )
            started = time.perf_counter()
            with space_for(folder / FEATURES, *SPACE):
                _compute_into(folder, extractor, images.at_rows(missing), done, batch)
            seconds = time.perf_counter() - started
            log.info(
                "Computed the features of %d images in %.1f s (%.1f images/s)",
                len(missing),
                seconds,
                len(missing) / max(seconds, 1e-9),
            )
            _prune(home)
        else:
            log.info("Reusing the frozen base's features of %d images from %s", len(needed), folder)
    how = _how(len(missing), len(needed))
    train = DiskArray(folder / FEATURES, data.x_train.rows)
    val = train.at_rows(data.x_val.rows)
    if train.nbytes + val.nbytes <= IN_MEMORY:
        return Features(np.asarray(train), np.asarray(val), how)
    log.info(
        "The features take %.1f GiB: read from disk batch by batch",
        (train.nbytes + val.nbytes) / 2**30,
    )
    return Features(train, val, how)


def _how(computed: int, needed: int) -> str:
    if computed == needed:
        return "computed"
    if computed == 0:
        return "reused"
    return f"computed for {computed} images, reused for {needed - computed}"


def _done(folder: Path, extractor, rows: int, cache_key: str) -> np.ndarray:
    """Which rows of ``folder``'s features are computed; an empty features file made if new."""
    if (folder / DONE).is_file():
        return np.load(folder / DONE)
    try:
        with space_for(folder / FEATURES, *SPACE):
            folder.mkdir(exist_ok=True)  # without its mask: a first pass that died, to start again
            (folder / IMAGES_KEY).write_text(cache_key)
            shape = (rows, *extractor.output_shape[1:])
            disk_array.create(folder / FEATURES, np.float32, shape)
        reserve(folder / FEATURES, *SPACE)  # a disk too small stops before the features
    except DiskFullError:
        shutil.rmtree(folder, ignore_errors=True)  # nothing half-made left behind
        raise
    return np.zeros(rows, bool)


def _compute_into(folder: Path, extractor, images: DiskArray, done: np.ndarray, batch: int) -> None:
    """Run ``images`` through the extractor by chunks, each marked done once written."""
    target = folder / FEATURES
    offset = disk_array.data_offset(target)
    with progress.bar(len(images), "Frozen-base features") as bar:
        for start in range(0, len(images), CHUNK):
            chunk = images[np.arange(start, min(start + CHUNK, len(images)))]
            values = np.asarray(stream.predict(extractor, chunk, batch), np.float32)
            disk_array.write_rows(target, offset, chunk.rows, values)
            done[chunk.rows] = True
            _save_done(folder, done)
            bar.update(len(chunk))


def _prune(home: Path) -> None:
    """Remove the features of image caches that are gone (their folder changed since)."""
    live = image_cache.keys(home.parent)
    for marker in home.glob(f"*/{IMAGES_KEY}"):
        if marker.read_text().strip() not in live:
            log.info("Removed the features %s: their image cache was replaced", marker.parent)
            shutil.rmtree(marker.parent, ignore_errors=True)


def _save_done(folder: Path, done: np.ndarray) -> None:
    """The done mask, replaced atomically once the features it marks are on disk."""
    fd = os.open(folder / FEATURES, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    partial = folder / f".{DONE}.{os.getpid()}"
    try:
        with open(partial, "wb") as handle:
            np.save(handle, done)
        os.replace(partial, folder / DONE)
    except BaseException:
        partial.unlink(missing_ok=True)  # a full disk leaves no half-written mask
        raise


def _computed(extractor, images, batch: int):
    """Features of in-memory images: in memory when small, else in an unnamed file on disk."""
    shape = (len(images), *extractor.output_shape[1:])
    if int(np.prod(shape, dtype=np.int64)) * 4 <= IN_MEMORY:
        return stream.predict(extractor, images, batch)
    handle, path = tempfile.mkstemp(suffix=".npy", prefix="experiments-features-")
    os.close(handle)
    try:
        offset = disk_array.create(path, np.float32, shape)
        for start in range(0, len(images), CHUNK):
            rows = np.arange(start, min(start + CHUNK, len(images)))
            values = np.asarray(stream.predict(extractor, images[rows], batch), np.float32)
            disk_array.write_rows(path, offset, rows, values)
        return DiskArray(path)  # open: the file lives on, unnamed, until the run ends
    finally:
        os.unlink(path)
