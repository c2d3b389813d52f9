"""What the test suite's Python processes spend their CPU on: imports, tracing, drawing...

    python benchmarks/suite_profile.py                    # the whole suite (pytest)
    python benchmarks/suite_profile.py -- -m "not slow"   # other pytest arguments after --
    python benchmarks/suite_profile.py --read FILE        # summarise a profile kept before

``suite_cpu.py`` says which programs the suite's CPU goes to; this script says what the
Python code in them was doing. It runs pytest under py-spy (``pip install py-spy``; root,
or ptrace allowed), which samples every Python process pytest starts, its xdist workers
and the commands, sweeps' workers and servers below them, 10 times a second each (a
process waiting is not sampled). Processes SLURM starts are not pytest's children, so they
are not sampled: ``suite_cpu.py`` counts them.

Each sample goes to one activity: **imports** if any frame is importing a module; else
**tracing** if TensorFlow is building a graph (Keras' layers, losses and optimizers run
as Python to trace a ``tf.function``); else the library of the innermost frame that
names one (``tensorflow``: eager operations and graph execution, ``keras``: building and
saving models, clearing a session with its full garbage collection, ...).
"""

from __future__ import annotations

import collections
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import ROOT, machine, suite_arguments  # noqa: E402

RATE = 10  # samples per second and process
TRACING = ("tracing_compilation", "func_graph")
LIBRARIES = [  # the first a frame's file matches names the sample's activity
    ("tensorflow", r"tensorflow/"),
    ("keras", r"keras/src/|h5py/"),
    ("matplotlib", r"matplotlib/|PIL/"),
    ("hydra", r"hydra/|omegaconf/"),
    ("store (sqlalchemy, alembic)", r"sqlalchemy/|alembic/"),
    ("mlflow", r"mlflow/"),
    ("numpy", r"numpy/"),
    ("experiments", r"experiments/"),
    ("pytest", r"_pytest/|pluggy/|xdist/|execnet/"),
]
KINDS = [  # the part a process plays, from the command line of its own frame
    ("pytest (its xdist workers)", r"-m pytest|python -u -c import sys"),  # execnet's
    ("sweep job (joblib, submitit)", r"loky|submitit"),
    ("mlflow server", r"uvicorn|mlflow server|-m mlflow"),
    ("command (python -m experiments...)", r"-m experiments"),
]


def samples(path: Path):
    """(frames, count) of each stack in a py-spy raw file. A command line may hold new
    lines, which split its record: a record ends with a space and its count."""
    pending = ""
    with path.open(encoding="utf-8", errors="replace") as lines:
        for line in lines:
            pending += line.rstrip("\n")
            if re.search(r" \d+$", pending):
                stack, _, count = pending.rpartition(" ")
                yield stack.split(";"), int(count)
                pending = ""
            else:
                pending += " "


def activity(frames: list[str]) -> str:
    if any("_find_and_load" in frame for frame in frames):
        return "imports"
    if any(marker in frame for frame in frames for marker in TRACING):
        return "tracing (Keras' Python, run to build TensorFlow graphs)"
    for frame in reversed(frames):
        for name, pattern in LIBRARIES:
            if re.search(pattern, frame):
                return name
    return "other"


def process(frames: list[str]) -> tuple[str, str]:
    """The innermost process of a stack: its id and the part it plays."""
    own = [frame for frame in frames if frame.startswith("process ")][-1]
    pid = own.split(":", 1)[0].removeprefix("process ")
    kind = next((name for name, pattern in KINDS if re.search(pattern, own)), "other")
    return pid, kind


def summary(path: Path) -> str:
    by_activity: collections.Counter[str] = collections.Counter()
    imports: collections.Counter[str] = collections.Counter()
    importing: dict[str, set[str]] = collections.defaultdict(set)
    for frames, count in samples(path):
        what = activity(frames)
        by_activity[what] += count
        if what == "imports":
            pid, kind = process(frames)
            imports[kind] += count
            importing[kind].add(pid)
    total = sum(by_activity.values())
    lines = [
        f"{total / RATE:,.0f} CPU seconds sampled ({machine()})",
        "",
        "| activity | CPU s | share |",
        "|---|---:|---:|",
    ]
    for what, count in by_activity.most_common():
        lines.append(f"| {what} | {count / RATE:,.0f} | {100 * count / total:.1f}% |")
    lines += ["", "| imports, by process | CPU s | processes | s each |", "|---|---:|---:|---:|"]
    for kind, count in imports.most_common():
        n = len(importing[kind])
        lines.append(f"| {kind} | {count / RATE:,.0f} | {n} | {count / RATE / n:.1f} |")
    return "\n".join(lines)


def record(pytest_args: list[str]) -> Path:
    """Run pytest under py-spy; the raw profile it wrote."""
    spy = shutil.which("py-spy")
    if spy is None:
        sys.exit("suite_profile.py needs py-spy: pip install py-spy")
    path = Path(tempfile.mkdtemp(prefix="suite-profile-")) / "profile.txt"
    command = [spy, "record", "--subprocesses", "--nonblocking", "--rate", str(RATE)]
    command += ["--format", "raw", "--output", str(path), "--"]
    started = time.perf_counter()
    subprocess.run([*command, sys.executable, "-m", "pytest", "-q", *pytest_args], cwd=ROOT)
    print(f"pytest took {time.perf_counter() - started:.0f} s under py-spy; profile: {path}")
    return path


def main() -> None:
    args = suite_arguments(__doc__, "a py-spy raw profile")
    print(summary(args.read or record(args.pytest_args)))


if __name__ == "__main__":
    main()
