"""The test suite's wall time against its budget: the fast tier and the whole suite.

    python benchmarks/suite_time.py              # both tiers once, on this machine
    python benchmarks/suite_time.py --repeat 2   # each twice, alternated (fast, whole, ...)
    python benchmarks/suite_time.py --write      # and into RESULTS.md, this CPU's section

The budget (README, Contributing): `pytest -m "not slow"` within 90 s and `pytest` within
10 minutes on a 2-core machine. The script times the commands as a contributor types them,
from the checkout, with nothing else running, and exits 1 when a tier is over its budget.
It also says how busy the CPUs were: a suite that keeps them busy gains nothing from more
xdist workers, only from less work.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import ROOT, cpu_kind, machine, median  # noqa: E402

TIERS = {"fast": (["-m", "not slow"], 90.0), "whole": ([], 600.0)}


def measure(repeat: int) -> dict[str, list[tuple[float, str]]]:
    """Each tier's wall times and pytest's closing line, the tiers alternated."""
    times: dict[str, list[tuple[float, str]]] = {name: [] for name in TIERS}
    for _ in range(repeat):
        for name, (args, _) in TIERS.items():
            started, ticks = time.perf_counter(), _cpu_ticks()
            result = subprocess.run(
                [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args],
                cwd=ROOT,
                capture_output=True,
                text=True,
            )
            elapsed = time.perf_counter() - started
            summary = f"{_closing_line(result.stdout)}; CPUs busy {_busy(ticks, _cpu_ticks())}"
            print(f"{name}: {elapsed:.0f} s, {summary}", file=sys.stderr, flush=True)
            if result.returncode != 0:
                raise SystemExit(f"pytest {' '.join(args)} failed:\n{result.stdout[-3000:]}")
            times[name].append((elapsed, summary))
    return times


def _cpu_ticks() -> tuple[int, int]:
    """All CPUs' (busy, total) clock ticks since boot, from /proc/stat (Linux)."""
    try:
        fields = [int(n) for n in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
    except (OSError, ValueError):
        return (0, 0)
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle and iowait
    return (sum(fields) - idle, sum(fields))


def _busy(before: tuple[int, int], after: tuple[int, int]) -> str:
    """How busy the CPUs were in between: a suite near 100 % gains only from less work."""
    total = after[1] - before[1]
    return f"{100 * (after[0] - before[0]) / total:.0f} %" if total > 0 else "unknown"


def _closing_line(output: str) -> str:
    found = re.findall(r"^=*\s*(\d+ passed.*?)\s*=*$", output, flags=re.M)
    return found[-1] if found else "no closing line"


def section(times: dict[str, list[tuple[float, str]]]) -> str:
    lines = [
        "## 7. The test suite against its budget",
        "",
        f"{machine()}.",
        "",
        "| tier | command | budget | wall time (each run) | pytest's closing line |",
        "|---|---|---:|---|---|",
    ]
    for name, (args, budget) in TIERS.items():
        command = "pytest " + " ".join(f'"{a}"' if " " in a else a for a in args)
        seconds = ", ".join(f"{t:.0f} s" for t, _ in times[name])
        lines.append(
            f"| {name} | `{command.strip()}` | {budget:.0f} s | {seconds} | {times[name][-1][1]} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=1, help="runs of each tier, alternated")
    parser.add_argument("--write", action="store_true", help="into RESULTS.md, this CPU's section")
    args = parser.parse_args()
    times = measure(args.repeat)
    text = section(times)
    print(text)
    if args.write:
        import results

        command = "python benchmarks/suite_time.py"
        command += f" --repeat {args.repeat}" if args.repeat > 1 else ""
        results.write_part(cpu_kind(), "suite", command, text)
    over = [
        f"{name} took {median([t for t, _ in times[name]]):.0f} s, over its {budget:.0f} s"
        for name, (_, budget) in TIERS.items()
        if median([t for t, _ in times[name]]) > budget
    ]
    if over:
        raise SystemExit("over budget: " + "; ".join(over))


if __name__ == "__main__":
    main()
