"""Part 4: the command line answers at once (goal: under 2 s, median of 5)."""

from __future__ import annotations

import tempfile
from pathlib import Path

from common import median, run

GOAL_S = 2.0
COMMANDS = {
    "--help": ["--help"],
    "--cfg job": ["--cfg", "job"],
    "backbone=resnet (rejected)": ["backbone=resnet"],
    "optimizer.lr=-1 (rejected)": ["optimizer.lr=-1"],
}


def measure(repeats: int = 5) -> list[dict]:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, args in COMMANDS.items():
            times = []
            for _ in range(repeats):
                elapsed, result = run(["-m", "experiments", *args], Path(tmp), check=False)
                if (result.returncode != 0) != ("rejected" in name):
                    raise SystemExit(f"{name}: exit {result.returncode}\n{result.stderr[-2000:]}")
                times.append(elapsed)
            rows.append({"command": name, "median_s": median(times), "times": times})
    return rows


def section(rows: list[dict]) -> str:
    lines = [
        "## 4. The command line answers at once",
        "",
        f"`python -m experiments ...`, median of {len(rows[0]['times'])} runs each; "
        f"goal: under {GOAL_S:.0f} s.",
        "",
        "| command | median (s) | all runs (s) | goal |",
        "|---|---:|---|---|",
    ]
    for row in rows:
        ok = "met" if row["median_s"] < GOAL_S else f"missed by {row['median_s'] - GOAL_S:.2f} s"
        runs = ", ".join(f"{t:.2f}" for t in row["times"])
        lines.append(f"| `{row['command']}` | {row['median_s']:.2f} | {runs} | {ok} |")
    return "\n".join(lines)


if __name__ == "__main__":
    print(section(measure()))
