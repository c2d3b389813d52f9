"""Thread pools follow the cores a process may use (taskset, a cpuset), not the machine's."""

from __future__ import annotations

import os
import subprocess
import sys

import cores
import pytest

from experiments import cpus

needs_affinity = pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="no affinity")


@needs_affinity
def test_usable_cores_are_the_affinity_mask_not_the_machines_count():
    own = os.sched_getaffinity(0)  # an xdist worker's share (tests/cores.py)
    try:
        os.sched_setaffinity(0, cores.MACHINE)
        assert cpus.usable() == len(cores.MACHINE)
        os.sched_setaffinity(0, {min(cores.MACHINE)})  # as `taskset -c <core>` starts a command
        assert cpus.usable() == 1
    finally:
        os.sched_setaffinity(0, own)


def test_the_machines_cores_are_shared_out_between_the_workers():
    assert cores.worker_share("gw0", 2, [0, 1]) == {0}
    assert cores.worker_share("gw1", 2, [0, 1]) == {1}
    assert cores.worker_share("gw1", 2, [0, 1, 2, 3, 4]) == {1, 3}
    assert cores.worker_share("gw3", 4, [0, 1]) == {1}  # more workers than cores: they share


@needs_affinity
def test_a_worker_keeps_to_its_share_and_whole_machine_gives_a_child_every_core():
    count = "import os; print(len(os.sched_getaffinity(0)))"
    whole = subprocess.run(
        [sys.executable, "-c", count],
        capture_output=True,
        text=True,
        preexec_fn=cores.whole_machine,
    )
    assert int(whole.stdout) == len(cores.MACHINE)
    workers = os.environ.get("PYTEST_XDIST_WORKER_COUNT")
    if workers and len(cores.MACHINE) >= 2:  # under xdist: this worker's share only
        expected = cores.worker_share(
            os.environ["PYTEST_XDIST_WORKER"], int(workers), sorted(cores.MACHINE)
        )
        assert os.sched_getaffinity(0) == expected
