"""Folders a run writes to, checked before anything heavy starts.

A run writes Hydra's log folder, its checkpoints and, with the embedded store, the
database and the artifacts. Finding one of them read-only after an hour of training
would lose the hour, so each is tried at start: created if needed, and a file written
and removed in it.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import tempfile
from pathlib import Path

from experiments.errors import ConfigError

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
