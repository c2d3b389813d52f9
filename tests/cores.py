"""The machine's cores shared out between xdist's workers, so their thread pools do not fight.

The project gives TensorFlow as many threads as the process may use cores (its affinity
mask, ``experiments.cpus``). Two workers on 2 cores, each with a 2-thread pool, and the
commands they start, ran 4 or more busy threads on 2 cores; each worker on a core of its
own ran the same tests in 10% less time (2-core AMD EPYC: 231 and 222 s against 201 and
208 s, alternated, for six training-heavy files). A worker's commands inherit its cores.

A test about processes sharing the machine (the threads a sweep's jobs get, jobs at once
on a fresh store) or about a service that would have a machine of its own (SLURM's
daemons, a tracking server) starts its child with ``preexec_fn=whole_machine``.
"""

from __future__ import annotations

import os

_AFFINITY = hasattr(os, "sched_getaffinity")
# Read when the worker imports this, before it is pinned: xdist starts it with every core.
MACHINE = frozenset(os.sched_getaffinity(0) if _AFFINITY else range(os.cpu_count() or 1))


def worker_share(worker: str, workers: int, cores: list[int]) -> set[int]:
    """The cores of xdist worker ``gw<i>`` of ``workers``: every ``workers``-th, from the i-th."""
    index = int(worker.removeprefix("gw"))
    return set(cores[index::workers]) or {cores[index % len(cores)]}


def pin_worker() -> None:
    """In an xdist worker: keep to its share of the machine's cores (all of them otherwise)."""
    worker, workers = (
        os.environ.get("PYTEST_XDIST_WORKER"),
        os.environ.get("PYTEST_XDIST_WORKER_COUNT"),
    )
    if not (_AFFINITY and worker and workers) or len(MACHINE) < 2:
        return
    os.sched_setaffinity(0, worker_share(worker, int(workers), sorted(MACHINE)))


def whole_machine() -> None:
    """``preexec_fn`` of a child that gets every core the session was started with."""
    if _AFFINITY:
        os.sched_setaffinity(0, MACHINE)
