"""A process this command started, known by its id and start time (an id alone is reused).

``stop`` ends a process only when both still match, so it never ends another program
that was given the same id since; it ends its whole group (the server's workers too).
"""

from __future__ import annotations

import os
import signal
import time
from dataclasses import asdict, dataclass


@dataclass
class Started:
    pid: int
    start: str  # field 22 of /proc/<pid>/stat: clock ticks after boot

    def to_json(self) -> dict:
        return asdict(self)

    def alive(self) -> bool:
        return start_time(self.pid) == self.start

    def stop(self, timeout: float = 30.0) -> None:
        """End the process and its group: SIGTERM, then SIGKILL after ``timeout`` seconds."""
        if not self.alive():
            return
        for how, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 10.0)):
            try:
                os.killpg(self.pid, how)
            except ProcessLookupError:
                return
            deadline = time.monotonic() + wait
            while time.monotonic() < deadline:
                _reap(self.pid)
                if not self.alive():
                    return
                time.sleep(0.2)


def started(pid: int) -> Started:
    return Started(pid, start_time(pid) or "")


def start_time(pid: int) -> str | None:
    """When ``pid`` started, or None when no such process runs (a zombie counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return None if fields[0] == "Z" else fields[19]


def _reap(pid: int) -> None:
    """Collect the exit of a child of this process (a test's), so it does not linger."""
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass
