"""Decode an image folder once, in parallel, into a cache on disk that later runs open in seconds.

The cache of a folder is one ``images.npy`` (every listed file resized to uint8, in the
listing's order) and a ``manifest.json`` (the files, and why any could not be decoded).
Its key digests the file list (paths, sizes, modification times), ``image_size``,
``channels`` and the decoder's version, so any change to the folder builds a new cache,
and the cache it replaces is removed. A build happens in a hidden folder renamed into
place when complete, under a lock: of several sweep jobs starting together, one decodes
and the others wait for it, then read what it wrote.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from experiments import cpus, progress
from experiments.data import disk_array
from experiments.data.images import decode_or_reason
from experiments.errors import DataError
from experiments.folders import ensure_writable, locked, reserve, space_for

log = logging.getLogger(__name__)

# Bump when decoding changes what a cache holds: every cache is then rebuilt.
DECODER_VERSION = 1
IMAGES, MANIFEST = "images.npy", "manifest.json"
CHUNK = 64  # files per task: few tasks, and a progress bar that moves
# A full disk under the cache: the setting that chose it, and the way out.
SPACE = (
    "dataset.cache_dir",
    "point dataset.cache_dir at a disk with room, or set dataset.cache=false",
)


@dataclass(frozen=True)
class Decoded:
    """Every listed file's pixels (a row each; an undecodable file's row is left zero)."""

    images: np.ndarray | disk_array.DiskArray
    reasons: dict[int, str]  # row -> why that file could not be decoded
    key: str | None = None  # the cache's key; None when decoded into memory


@dataclass(frozen=True)
class Files:
    """What a cache is built from: a folder's image files, and its settings."""

    root: Path
    paths: list[Path]
    stats: list[tuple[int, int]]  # (size in bytes, modification time in ns) of each path
    size: int
    channels: int

    def key(self) -> str:
        digest = hashlib.blake2b(digest_size=16)
        head = [DECODER_VERSION, str(self.root), self.size, self.channels]
        digest.update(json.dumps(head).encode())
        skip = len(os.path.join(self.root, ""))  # every path is under root: its name from there
        for path, (size, mtime) in zip(self.paths, self.stats, strict=True):
            digest.update(f"\0{str(path)[skip:]}\0{size}\0{mtime}".encode())
        return digest.hexdigest()


def in_memory(paths: list[Path], size: int, channels: int) -> Decoded:
    """Decode ``paths`` into one array in memory, on every core."""
    images = np.zeros((len(paths), size, size, channels), np.uint8)

    def keep(rows, pixels):
        images[rows] = pixels

    reasons = _decode(paths, size, channels, keep, f"Decoding {len(paths)} images")
    return Decoded(images, reasons)


def cached(files: Files, cache_dir: Path) -> Decoded:
    """The folder's images from the cache under ``cache_dir``: opened, or built first."""
    key = files.key()
    home = cache_dir / "images"
    folder = home / f"{_safe(files.root.name)}-{files.size}px-{files.channels}ch-{key[:16]}"
    if not (folder / MANIFEST).is_file():
        remedy = "point it at a writable folder or set dataset.cache=false"
        ensure_writable(home, "dataset.cache_dir", remedy)
        waiting = f"Waiting for another process to finish the image cache {folder}"
        with locked(home / f"{folder.name}.lock", waiting):
            if not (folder / MANIFEST).is_file():  # nobody built it while this one waited
                with space_for(folder / IMAGES, *SPACE):  # and nothing half-written left
                    _build(files, folder, key)
                _prune(home, folder, files)
    return _open(folder, key, len(files.paths))


def keys(cache_dir: Path) -> set[str]:
    """The keys of the image caches under ``cache_dir``."""
    found = set()
    for manifest in (cache_dir / "images").glob(f"*/{MANIFEST}"):
        with contextlib.suppress(OSError, ValueError):
            found.add(json.loads(manifest.read_text())["key"])
    return found


def _open(folder: Path, key: str, count: int) -> Decoded:
    manifest = json.loads((folder / MANIFEST).read_text())
    images = disk_array.DiskArray(folder / IMAGES)
    if manifest.get("key") != key or len(images) != count:
        raise DataError(
            f"the image cache {folder} does not match its folder (a copy from elsewhere?): "
            f"delete it (rm -rf {folder}) and the next run rebuilds it"
        )
    log.info(
        "Image cache %s: %d images, opened (built in %.1f s)",
        folder,
        count,
        manifest.get("seconds", 0.0),
    )
    return Decoded(images, {int(row): why for row, why in manifest["skipped"].items()}, key)


def _build(files: Files, folder: Path, key: str) -> None:
    """Decode every file into ``folder``, written aside and renamed into place when complete."""
    for stale in folder.parent.glob(f".{folder.name}.building-*"):
        shutil.rmtree(stale, ignore_errors=True)  # a build that died; the lock is ours now
    building = folder.parent / f".{folder.name}.building-{os.getpid()}"
    started = time.perf_counter()
    try:
        building.mkdir()
        target = building / IMAGES
        shape = (len(files.paths), files.size, files.size, files.channels)
        offset = disk_array.create(target, np.uint8, shape)
        reserve(target, *SPACE)  # a disk too small stops here, before any image is decoded

        def keep(rows, pixels):
            disk_array.write_rows(target, offset, rows, pixels)

        what = f"Decoding {len(files.paths)} images into the cache {folder}"
        reasons = _decode(files.paths, files.size, files.channels, keep, what)
        seconds = time.perf_counter() - started
        manifest = {
            "key": key,
            "root": str(files.root),
            "image_size": files.size,
            "channels": files.channels,
            "files": [str(path.relative_to(files.root)) for path in files.paths],
            "skipped": {str(row): why for row, why in reasons.items()},
            "seconds": round(seconds, 2),
        }
        (building / MANIFEST).write_text(json.dumps(manifest))
        _sync(building)
        os.rename(building, folder)
    except BaseException:
        shutil.rmtree(building, ignore_errors=True)
        raise
    count = len(files.paths)
    log.info(
        "Decoded %d images in %.1f s (%.0f images/s) into %s",
        count,
        seconds,
        count / max(seconds, 1e-9),
        folder,
    )


def _decode(paths: list[Path], size: int, channels: int, keep, what: str) -> dict[int, str]:
    """Decode ``paths`` on every core; ``keep(rows, pixels)`` each chunk; the failures' reasons.

    Threads, not processes: Pillow releases the GIL while it decodes and resizes, and a
    thread is safe to start where TensorFlow already runs.
    """
    chunks = [range(start, min(start + CHUNK, len(paths))) for start in range(0, len(paths), CHUNK)]

    def work(rows: range) -> dict[int, str]:
        pixels = np.zeros((len(rows), size, size, channels), np.uint8)
        reasons = {}
        for i, row in enumerate(rows):
            decoded, reason = decode_or_reason(paths[row], size, channels)
            if decoded is None:
                reasons[row] = reason
            else:
                pixels[i] = decoded
        keep(np.asarray(rows), pixels)
        return reasons

    log.info("%s on %d threads", what, cpus.usable())
    reasons: dict[int, str] = {}
    shown = what.split(" into ")[0]
    with progress.bar(len(paths), shown) as bar, ThreadPoolExecutor(cpus.usable()) as pool:
        for rows, failed in zip(chunks, pool.map(work, chunks), strict=True):
            reasons.update(failed)
            bar.update(len(rows))
    return reasons


def _prune(home: Path, kept: Path, files: Files) -> None:
    """Remove the caches this one replaces: the same folder and settings, older files."""
    for manifest_path in home.glob(f"*/{MANIFEST}"):
        folder = manifest_path.parent
        if folder == kept:
            continue
        try:
            manifest = json.loads(manifest_path.read_text())
        except (OSError, ValueError):
            continue
        same = (manifest.get("root"), manifest.get("image_size"), manifest.get("channels"))
        if same == (str(files.root), files.size, files.channels):
            log.info("Removed the image cache %s: its folder has changed since", folder)
            shutil.rmtree(folder, ignore_errors=True)


def _sync(folder: Path) -> None:
    """Flush ``folder``'s files to disk before it is renamed into place."""
    for path in folder.iterdir():
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)[:40] or "folder"
