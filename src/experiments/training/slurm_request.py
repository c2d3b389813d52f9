"""A sweep's SLURM request, checked against the cluster before any job is submitted.

``hydra/launcher=slurm`` asks, for every job, for a partition, CPUs, memory, GPUs and a
time limit. A request that no node of the partition can meet would be refused by sbatch
with a traceback (an unknown partition), or wait in the queue for ever (PENDING, reason
``PartitionConfig``). Here it is one line naming the limit and the override that fixes
it, said before the sweep's parent run opens. The cluster's answer is ``sinfo``'s, one
line per node; without ``sinfo`` (or when it fails) nothing is checked, and sbatch judges.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from experiments.errors import ConfigError

SINFO = ["sinfo", "--noheader", "--Node", "--format=%P|%c|%m|%G|%l"]
_GPUS = re.compile(r"gpu(?::[^:,(]+)?:(\d+)")


@dataclass
class Partition:
    """What the largest node of a partition offers a job."""

    name: str
    default: bool
    cpus: int = 0
    memory_mb: int = 0
    gpus: int = 0
    limit_min: float | None = None  # its time limit; None: none


def partitions(run: Callable = subprocess.run) -> dict[str, Partition] | None:
    """The cluster's partitions by name, from ``sinfo``; None when it cannot say."""
    try:
        answer = run(SINFO, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return None
    if answer.returncode != 0:
        return None
    found: dict[str, Partition] = {}
    for line in answer.stdout.splitlines():
        fields = line.strip().split("|")
        if len(fields) != 5:
            continue
        name, cpus, memory, gres, limit = fields
        part = found.setdefault(name.rstrip("*"), Partition(name.rstrip("*"), name.endswith("*")))
        part.cpus = max(part.cpus, _number(cpus))
        part.memory_mb = max(part.memory_mb, _number(memory))
        part.gpus = max(part.gpus, sum(int(n) for n in _GPUS.findall(gres)))
        part.limit_min = minutes(limit)
    return found or None


def check(launcher: Mapping, found: dict[str, Partition] | None) -> None:
    """Refuse, in one line, a request no node of the chosen partition can meet."""
    if not found:
        return
    name = launcher.get("partition")
    if name is None:
        part = next((p for p in found.values() if p.default), None)
        if part is None:
            return
    elif str(name) not in found:
        raise ConfigError(
            f"hydra.launcher.partition={name}",
            f"this cluster has no partition {str(name)!r}; it has {_listed(found)}: set "
            "hydra.launcher.partition to one of them, or leave it out for the default",
        )
    else:
        part = found[str(name)]
    _check_node(launcher, part)


def _check_node(launcher: Mapping, part: Partition) -> None:
    where = f"partition {part.name!r}"
    tasks = int(launcher.get("tasks_per_node") or 1)
    cpus = int(launcher.get("cpus_per_task") or 1)
    if part.cpus and cpus * tasks > part.cpus:
        fits = max(1, part.cpus // tasks)
        raise ConfigError(
            f"hydra.launcher.cpus_per_task={cpus}",
            f"{cpus} CPUs for each of {tasks} task(s) per node, but the largest node of {where} "
            f"has {part.cpus}: set hydra.launcher.cpus_per_task={fits}",
        )
    mem_gb = launcher.get("mem_gb")
    if mem_gb is not None and part.memory_mb and float(mem_gb) * 1024 > part.memory_mb:
        fits = max(1, part.memory_mb // 1024)
        raise ConfigError(
            f"hydra.launcher.mem_gb={mem_gb}",
            f"the largest node of {where} has {part.memory_mb / 1024:.1f} GB of memory "
            f"for jobs: set hydra.launcher.mem_gb={fits}",
        )
    gpus = int(launcher.get("gpus_per_node") or 0)
    if gpus > part.gpus:
        remedy = (
            f"set hydra.launcher.gpus_per_node={part.gpus}"
            if part.gpus
            else "use hydra/launcher=slurm (CPU only), or a partition with GPUs"
        )
        raise ConfigError(
            f"hydra.launcher.gpus_per_node={gpus}",
            f"the largest node of {where} has {part.gpus} GPU(s): {remedy}",
        )
    timeout = launcher.get("timeout_min")
    if timeout is not None and part.limit_min is not None and float(timeout) > part.limit_min:
        raise ConfigError(
            f"hydra.launcher.timeout_min={timeout}",
            f"{where} lets a job run {part.limit_min:g} min at most: set "
            f"hydra.launcher.timeout_min={int(part.limit_min)} (a job that reaches it "
            "requeues itself and resumes its run)",
        )


def minutes(limit: str) -> float | None:
    """``sinfo``'s time limit in minutes: minutes[:seconds], hours:minutes:seconds, or
    days-hours[:minutes[:seconds]]; None for infinite."""
    text = limit.strip().lower()
    if text in ("infinite", "unlimited", "n/a", ""):
        return None
    days, dash, clock = text.rpartition("-")
    parts = [int(p) for p in clock.split(":")]
    if dash:  # days-hours[:minutes[:seconds]]
        parts += [0] * (3 - len(parts))
    elif len(parts) < 3:  # minutes[:seconds]
        parts = [0, *parts, 0][:3] if len(parts) == 1 else [0, *parts]
    hours, mins, secs = parts
    return int(days or 0) * 1440 + hours * 60 + mins + secs / 60


def _number(text: str) -> int:
    digits = re.match(r"\d+", text.strip())
    return int(digits.group()) if digits else 0


def _listed(found: dict[str, Partition]) -> str:
    return ", ".join(f"{p.name} (the default)" if p.default else p.name for p in found.values())
