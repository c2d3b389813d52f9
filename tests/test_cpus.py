"""Thread pools follow the cores a process may use (taskset, a cpuset), not the machine's."""

from __future__ import annotations

import os

import pytest

from experiments import cpus


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="no CPU affinity here")
def test_usable_cores_are_the_affinity_mask_not_the_machines_count():
    every = os.sched_getaffinity(0)
    assert cpus.usable() == len(every)
    try:
        os.sched_setaffinity(0, {min(every)})  # as `taskset -c <core>` starts a command
        assert cpus.usable() == 1
    finally:
        os.sched_setaffinity(0, every)
