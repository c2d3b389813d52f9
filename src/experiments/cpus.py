"""How many CPUs this process may use: its affinity mask, not the machine's count.

``taskset``, a container's cpuset and a scheduler's cgroup (SLURM with task/affinity) all
narrow the mask; ``os.cpu_count()`` still counts every core of the machine, and thread
pools sized from it oversubscribe the cores the process really has.
"""

from __future__ import annotations

import os


def usable() -> int:
    """The CPUs this process may run on (at least 1)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return os.cpu_count() or 1
