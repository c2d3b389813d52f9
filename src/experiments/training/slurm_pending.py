"""A SLURM sweep's job that waits for a reason that will not clear by itself: said once.

A job can stay PENDING for good: held (``JobHeldUser``), asking more than its partition
allows (``PartitionConfig``, ``PartitionTimeLimit``...), past a per-job limit of its QOS,
or after a dependency that can no longer be met. The sweep would wait on it in silence.
At each poll of the launcher's watcher, ``squeue`` says which of the sweep's jobs are
PENDING and why; each job and reason among those gets one warning, with what starts the
job or fixes its request. Reasons that clear as other jobs end (``Resources``,
``Priority``) are not reported.
"""

from __future__ import annotations

import logging
import subprocess
from collections.abc import Callable

log = logging.getLogger(__name__)

_REQUEST = (
    "the request exceeds what its partition allows: lower hydra.launcher.cpus_per_task, "
    "mem_gb, gpus_per_node or timeout_min, or choose another hydra.launcher.partition"
)
_LIMIT = "past a per-job limit of its QOS or account: lower the request (hydra.launcher.*)"
HINTS = {
    "JobHeldUser": "held: `scontrol release {job}` starts it",
    "JobHeldAdmin": "held by an administrator, who alone can release it",
    "PartitionConfig": _REQUEST,
    "PartitionNodeLimit": _REQUEST,
    "PartitionTimeLimit": _REQUEST,
    "BadConstraints": _REQUEST,
    "InvalidAccount": "its account is not valid here: ask the cluster's administrators",
    "InvalidQOS": "its QOS is not valid here: ask the cluster's administrators",
    "DependencyNeverSatisfied": "a job it depends on failed",
}
STOP = "Ctrl-C stops the sweep and cancels its jobs"


def hint(reason: str, job: str) -> str | None:
    """What to do about a job PENDING for ``reason``; None for a reason that clears."""
    if reason in HINTS:
        return HINTS[reason].format(job=job)
    if reason.startswith(("QOSMax", "AssocMax")) and "PerJob" in reason:
        return _LIMIT
    return None


def pending(job_ids: list[str], run: Callable = subprocess.run) -> dict[str, str]:
    """Each of ``job_ids`` that is PENDING, with squeue's reason (array tasks one by one)."""
    bases = sorted({job.split("_")[0] for job in job_ids})
    if not bases:
        return {}
    asked = ["squeue", "-h", "-r", "-t", "PENDING", "-o", "%i|%r", "-j", ",".join(bases)]
    try:
        answer = run(asked, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return {}
    if answer.returncode != 0:
        return {}
    found = dict(line.split("|", 1) for line in answer.stdout.splitlines() if "|" in line)
    return {job: found[job] for job in job_ids if job in found}


class Reporter:
    """Called with the sweep's unfinished jobs at each poll; warns once per job and reason."""

    def __init__(self, run: Callable = subprocess.run):
        self.run = run
        self.said: set[tuple[str, str]] = set()

    def __call__(self, job_ids: list[str]) -> None:
        for job, reason in pending(job_ids, self.run).items():
            what = hint(reason, job)
            if what is None or (job, reason) in self.said:
                continue
            self.said.add((job, reason))
            log.warning(
                "SLURM job %s is PENDING (%s) and will not start by itself: %s. %s",
                job,
                reason,
                what,
                STOP,
            )
