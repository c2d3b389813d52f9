"""One sweep per folder: the launching process holds its sweep folder for as long as it runs.

Hydra names a sweep's folder by the second it started (``multirun/<date>/<time>``). Two
sweeps started within the same second, or given the same ``hydra.sweep.dir``, would share
one folder, and the second's parent-run file would overwrite the first's: its jobs would
land under the other sweep. So a sweep claims its folder with an exclusive lock on
``<folder>/.sweep.lock``, held until its process exits (the lock dies with it, so a folder
whose sweep has ended can be reused). A folder held by a running sweep is left to it: this
sweep takes ``<folder>-2`` (or ``-3``...) and says so.

Nothing heavy is imported here: this runs before any job.
"""

from __future__ import annotations

import fcntl
import itertools
import os
from pathlib import Path

LOCK = ".sweep.lock"
_held: list = []  # the open lock files of this process's sweeps: a lock lasts while open


def claim(folder: Path) -> tuple[Path, str | None]:
    """A folder for this sweep: ``folder``, or the first free ``folder-N``; and who held it.

    The second value names the process that holds ``folder`` when this sweep had to move.
    """
    holder = None
    for n in itertools.count(1):
        candidate = folder if n == 1 else folder.with_name(f"{folder.name}-{n}")
        candidate.mkdir(parents=True, exist_ok=True)
        handle = open(candidate / LOCK, "a+")  # noqa: SIM115 - held open on purpose
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if holder is None:
                handle.seek(0)
                holder = handle.read().strip() or "another process"
            handle.close()
            continue
        handle.seek(0)
        handle.truncate()
        handle.write(f"process {os.getpid()}\n")
        handle.flush()
        _held.append(handle)
        return candidate, holder
    raise AssertionError("unreachable")  # pragma: no cover


def override(folder: Path) -> str:
    """``hydra.sweep.dir=<folder>`` as a command-line override, quoted where it must be."""
    text = str(folder)
    if all(c.isalnum() or c in "/._-:" for c in text):
        return f"hydra.sweep.dir={text}"
    escaped = text.replace("\\", "\\\\").replace("'", "\\'")
    return f"hydra.sweep.dir='{escaped}'"
