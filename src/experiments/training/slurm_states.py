"""A SLURM sweep's jobs followed without accounting: their states, as sacct would give them.

submitit follows its jobs with ``sacct``. Where SLURM keeps no accounting, sacct answers
nothing, and a job that left the queue without writing its result (``scancel``, killed
by a signal, out of memory, a lost node) was waited on for ever. Here the launcher asks
``scontrol show job`` instead, which knows every job for a while after it ended
(``MinJobAge``, 300 s by default), and prints its answer the way sacct would for
submitit to read: ``python -m experiments.training.slurm_states <job id>...``. A job
scontrol no longer knows is ``LOST``: it left the queue, so it is over.

What happens to a job found over without a result: ``slurm_watch``.
"""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Callable

HEADER = "JobID|State|NodeList"
# SLURM's states of a job that is over, and those submitit knows a job comes back from.
ENDED = {"BOOT_FAIL", "CANCELLED", "COMPLETED", "DEADLINE", "FAILED", "NODE_FAIL"}
ENDED |= {"OUT_OF_MEMORY", "TIMEOUT"}
WAITED_ON = {"PENDING", "RUNNING", "REQUEUED", "COMPLETING", "PREEMPTED"}


def command(job_ids: list[str]) -> list[str] | None:
    """The command submitit's watcher runs at each poll, for the jobs not known to be over."""
    return [sys.executable, "-m", __name__, *sorted(job_ids)] if job_ids else None


def states(job_ids: list[str], run: Callable = subprocess.run) -> dict[str, tuple[str, str]]:
    """Each job's (state, nodes) as scontrol says. A job scontrol no longer knows is LOST;
    one it does not list yet (an array's tasks not started) is UNKNOWN, still waited on."""
    found: dict[str, tuple[str, str]] = {}
    known: set[str] = set()
    for base in sorted({job.split("_")[0] for job in job_ids}):
        asked = ["scontrol", "--oneliner", "show", "job", base]
        answer = run(asked, capture_output=True, text=True)
        if answer.returncode != 0:
            continue
        known.add(base)
        for line in answer.stdout.splitlines():
            fields = _fields(line)
            state = (_as_submitit(fields.get("JobState", "")), fields.get("NodeList", ""))
            tasks = fields.get("ArrayTaskId")
            if not tasks:
                found[fields.get("JobId", base)] = state
                continue
            for task in _tasks(tasks):
                found[f"{fields.get('ArrayJobId')}_{task}"] = state
    gone = ("LOST", "")
    return {
        job: found.get(job) or (("UNKNOWN", "") if job.split("_")[0] in known else gone)
        for job in job_ids
    }


def exit_detail(job_id: str, run: Callable = subprocess.run) -> str:
    """How job ``job_id`` ended, as scontrol says, in words: ``exit code 137, SIGKILL``
    (a shell's 128 + 9 for a task or an srun killed by signal 9), ``signal 9, SIGKILL``
    (scontrol's ``ExitCode=0:9``); empty where scontrol no longer knows the job."""
    try:
        asked = ["scontrol", "--oneliner", "show", "job", job_id]
        answer = run(asked, capture_output=True, text=True)
    except OSError:  # no scontrol here: the state alone says it
        return ""
    if answer.returncode != 0 or not answer.stdout.strip():
        return ""
    fields = _fields(answer.stdout.splitlines()[0])
    code, _, signal_number = fields.get("ExitCode", "").partition(":")
    if signal_number.isdigit() and int(signal_number):
        return f"signal {signal_number}, {_signal_name(int(signal_number))}"
    if code.isdigit() and int(code) > 128:
        return f"exit code {code}, {_signal_name(int(code) - 128)}"
    if code.isdigit() and int(code):
        return f"exit code {code}"
    return ""


def _fields(line: str) -> dict[str, str]:
    """One job of ``scontrol --oneliner show job``: its ``Key=value`` fields."""
    return dict(field.split("=", 1) for field in line.split() if "=" in field)


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def _as_submitit(state: str) -> str:
    """SLURM's state, where it means the job is over; else one submitit waits on.

    submitit takes any state it does not know as over: a job passing through
    CONFIGURING or SIGNALING would be read as ended without a result.
    """
    if state in ENDED or state in WAITED_ON:
        return state
    return "RUNNING"


def _tasks(spec: str) -> list[int]:
    """An array's task ids as scontrol writes them: ``3``, ``0-7%2``, ``1,4-5``, ``0-9:3``."""
    numbers: list[int] = []
    for part in spec.split("%")[0].split(","):
        bounds, _, step = part.partition(":")
        first, _, last = bounds.partition("-")
        if first.isdigit():
            numbers.extend(range(int(first), int(last or first) + 1, int(step or 1)))
    return numbers


def main(argv: list[str]) -> None:
    print(HEADER)
    for job, (state, nodes) in states(argv).items():
        print(f"{job}|{state}|{nodes}")


if __name__ == "__main__":
    main(sys.argv[1:])
