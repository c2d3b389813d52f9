"""Folders a run writes to, checked before anything heavy starts.

A run writes Hydra's log folder, its checkpoints and, with the embedded store, the
database and the artifacts. Finding one of them read-only after an hour of training
would lose the hour, so each is tried at start: created if needed, and a file written
and removed in it.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import logging
import os
import shutil
import tempfile
from pathlib import Path

from experiments.errors import ConfigError, DiskFullError

log = logging.getLogger(__name__)


def ensure_writable(folder: str | os.PathLike, key: str, remedy: str) -> Path:
    """Create ``folder`` if needed and check a file can be written there.

    Raises ConfigError naming ``key`` (the setting that chose the folder) and ``remedy``.
    """
    path = Path(folder).absolute()
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path, prefix=".write-check-"):
            pass
    except OSError as exc:
        raise ConfigError(
            key, f"cannot write to {path} ({exc.strerror or exc}); {remedy}"
        ) from None
    return path


@contextlib.contextmanager
def locked(lock_path: Path, waiting: str):
    """Hold the file lock ``lock_path`` (created if needed); log ``waiting`` if another has it.

    Of several processes (the jobs of a sweep) that would build the same cache, one holds
    the lock and builds; the others wait here, then find the cache built.
    """
    with open(lock_path, "a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log.info(waiting)
            fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


FULL = (errno.ENOSPC, errno.EDQUOT)  # no space left; over quota


def is_disk_full(exc: BaseException) -> bool:
    """Whether ``exc`` is a write that found its disk full (or its quota spent)."""
    return isinstance(exc, OSError) and exc.errno in FULL


def disk_full(path: str | os.PathLike | None, key: str | None, remedy: str, needed: int = 0):
    """The one-line error for a full disk under ``path``: what it needs and has, the fix."""
    folder = Path(path).parent if path else None
    where = f"in {folder}" if folder else "on a disk this run writes to"
    figures = ""
    if folder is not None:
        with contextlib.suppress(OSError):
            free = f"{_size(shutil.disk_usage(_existing(folder)).free)} free"
            figures = f" ({_size(needed)} needed, {free})" if needed else f" ({free})"
    setting = f"{key}: " if key else ""
    return DiskFullError(f"{setting}no space left {where}{figures}: free some space, or {remedy}")


def reserve(path: Path, key: str, remedy: str) -> None:
    """Claim the disk space of the (sparse) file ``path`` now, before it is filled.

    A cache is written over minutes; finding the disk full at the end would waste them and
    leave a partial file. DiskFullError here, and the caller removes the file.
    """
    size = path.stat().st_size
    fd = os.open(path, os.O_WRONLY)
    try:
        os.posix_fallocate(fd, 0, size)
    except OSError as exc:
        if is_disk_full(exc):
            raise disk_full(path, key, remedy, size) from None
        if shutil.disk_usage(path.parent).free < size:  # no fallocate here (some NFS): compare
            raise disk_full(path, key, remedy, size) from None
    finally:
        os.close(fd)


@contextlib.contextmanager
def space_for(path: Path, key: str, remedy: str):
    """Writes inside that find the disk full raise DiskFullError naming ``path``'s folder."""
    try:
        yield
    except OSError as exc:
        if not is_disk_full(exc):
            raise
        raise disk_full(path, key, remedy) from None


def _existing(folder: Path) -> Path:
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    return folder


def _size(nbytes: int) -> str:
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if nbytes >= scale:
            return f"{nbytes / scale:.1f} {unit}"
    return f"{nbytes} bytes"
