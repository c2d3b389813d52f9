"""Where the test suite's CPU time goes, by program and by the part each process plays.

    python benchmarks/suite_cpu.py                    # the whole suite (pytest), as CI runs it
    python benchmarks/suite_cpu.py -- -m "not slow"   # other pytest arguments after --
    python benchmarks/suite_cpu.py --read FILE        # summarise an accounting file kept before

On 2 cores the suite keeps both busy (``suite_time.py`` says how busy), so only less CPU
work shortens it. This script says what that work is. It runs pytest with Linux process
accounting on (``accton``, from Debian's ``acct``; root only), then reads the file the
kernel wrote: one record per process that ended, with its parent, its program name and its
user and system CPU time (all its threads). Each process is put in one part, from its
command line (read from /proc every 0.2 s while pytest runs: a record keeps only 16
characters of the program's name) and its place in the process tree:

- ``pytest``: the launching process and its xdist workers, where the in-process tests run;
- ``commands``: the processes a test starts with ``python -m experiments ...``;
- ``jobs``: the processes those start in turn (a sweep's joblib or submitit workers);
- ``slurm``: every process under the local SLURM's daemons, job steps included;
- ``mlflow server``, ``docs (sphinx)``, ``postgres``, ``chromium``; the rest by name.

Records of processes that had not ended when accounting stopped are missing: the script
stops it only after pytest has exited.
"""

from __future__ import annotations

import collections
import contextlib
import json
import os
import struct
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from common import ROOT, machine, suite_arguments

RECORD = struct.Struct("<BBHIIIIIIf8H16s")  # struct acct_v3 (linux/acct.h), 64 bytes
TICKS = 100.0  # AHZ: accounting's clock ticks per second
SLURM = {"slurmstepd", "slurmd", "slurmctld", "munged", "srun", "sbatch", "squeue"}


def _comp(value: int) -> int:
    """A comp_t: 13 bits of mantissa, 3 bits of base-8 exponent."""
    return (value & 0x1FFF) << (3 * (value >> 13))


def read(path: Path) -> dict[int, dict]:
    """The processes in an accounting file, by pid: parent, name and CPU seconds."""
    data = path.read_bytes()
    processes = {}
    for offset in range(0, len(data) - RECORD.size + 1, RECORD.size):
        fields = RECORD.unpack_from(data, offset)
        if fields[1] != 3:  # ac_version: only v3 records carry the parent
            continue
        pid, ppid = fields[6], fields[7]
        cpu = (_comp(fields[10]) + _comp(fields[11])) / TICKS
        name = fields[18].split(b"\0")[0].decode(errors="replace")
        processes[pid] = {"ppid": ppid, "name": name, "cpu": cpu}
    return processes


def part(pid: int, processes: dict[int, dict], commands: dict[int, str]) -> str:
    """The part a process plays (see the module's docstring)."""
    chain, seen = [], set()
    while pid in processes and pid not in seen:  # up to the first ancestor not recorded
        seen.add(pid)
        chain.append(pid)
        pid = processes[pid]["ppid"]
    names = [processes[p]["name"] for p in chain]
    own, *above = [commands.get(p, "") for p in chain]

    def said(needles, lines) -> bool:
        return any(needle in line for line in lines for needle in needles)

    if SLURM & set(names):
        return "slurm"
    for key, needles in SERVICES:
        if said(needles, [own, *above]):
            return key
    if said(EXPERIMENTS + WORKERS, [own]):
        return "jobs" if said(EXPERIMENTS, above) else "commands"
    if said(PYTEST, [own]):
        return "pytest"
    if said(EXPERIMENTS, above):
        return "jobs"  # something a command started (a multiprocessing child...)
    for key, prefix in PROGRAMS:
        if names[0].startswith(prefix):
            return key
    return f"other: {names[0]}"


# What command lines say, the process's own or an ancestor's.
EXPERIMENTS = ("-m experiments", "experiments/__main__")
WORKERS = ("joblib.externals.loky", "submitit.core")  # a sweep's job processes
PYTEST = ("bin/pytest", "-m pytest", "exec(eval(sys.stdin.readline()))")  # and xdist's workers
PROGRAMS = (("postgres", "postgres"), ("chromium", "chrom"), ("pip", "pip"), ("git", "git"))
SERVICES = (
    ("mlflow server", ("mlflow server", "mlflow.server", "gunicorn", "uvicorn")),
    ("docs (sphinx)", ("sphinx",)),
)


def summary(processes: dict[int, dict], commands: dict[int, str]) -> str:
    parts, names = collections.Counter(), collections.Counter()
    counts = collections.Counter()
    for pid, process in processes.items():
        key = part(pid, processes, commands)
        parts[key] += process["cpu"]
        counts[key] += 1
        names[process["name"]] += process["cpu"]
    total = sum(parts.values())
    known = sum(1 for pid in processes if pid in commands)
    lines = [machine(), "", f"{len(processes)} processes ({known} with their command line), "]
    lines[-1] += f"{total:.0f} CPU seconds in all"
    lines += ["", "| part | processes | CPU s | share |", "|---|---:|---:|---:|"]
    for key, seconds in parts.most_common(15):
        lines.append(f"| {key} | {counts[key]} | {seconds:.0f} | {seconds / total:.0%} |")
    lines += ["", "| program | CPU s |", "|---|---:|"]
    lines += [f"| {name} | {seconds:.0f} |" for name, seconds in names.most_common(10)]
    return "\n".join(lines)


def _sample(commands: dict[int, str], stop: threading.Event) -> None:
    """Each new process's command line, read while it runs (accounting keeps only 16 chars)."""
    while not stop.wait(0.2):
        for entry in os.scandir("/proc"):
            if entry.name.isdigit() and int(entry.name) not in commands:
                with contextlib.suppress(OSError):
                    line = Path(entry.path, "cmdline").read_bytes().replace(b"\0", b" ")
                    if line:
                        commands[int(entry.name)] = line.decode(errors="replace")[:300]


def record(pytest_args: list[str]) -> Path:
    """Run pytest with process accounting on; the accounting file (its command lines beside)."""
    path = Path(tempfile.mkdtemp(prefix="suite-cpu-")) / "pacct"
    path.touch()
    commands: dict[int, str] = {}
    stop = threading.Event()
    sampler = threading.Thread(target=_sample, args=(commands, stop), daemon=True)
    subprocess.run(["accton", str(path)], check=True)
    sampler.start()
    started = time.perf_counter()
    try:
        subprocess.run([sys.executable, "-m", "pytest", "-q", *pytest_args], cwd=ROOT)
    finally:
        subprocess.run(["accton", "off"], check=True)
        stop.set()
        sampler.join()
    path.with_suffix(".json").write_text(json.dumps(commands))
    print(f"pytest took {time.perf_counter() - started:.0f} s; accounting file: {path}")
    return path


def main() -> None:
    args = suite_arguments(__doc__, "an accounting file")
    path = args.read or record(args.pytest_args)
    saved = path.with_suffix(".json")
    found = json.loads(saved.read_text()) if saved.is_file() else {}
    commands = {int(pid): line for pid, line in found.items()}
    print(summary(read(path), commands))


if __name__ == "__main__":
    main()
