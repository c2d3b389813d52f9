"""The default command against the reference network's script, whole command to whole command.

    python benchmarks/whole_command.py                      # 3 alternated pairs, seeds 1-3
    python benchmarks/whole_command.py --pairs 1            # one pair, seed 1
    python benchmarks/whole_command.py --write              # and into RESULTS.md (this CPU)
    python benchmarks/whole_command.py trainer.epochs=12    # a candidate: overrides of the default

Pair ``i`` runs ``python -m experiments seed=i`` (in an empty folder with its own SQLite
store, as a user runs it) and ``bare_keras.py --epochs 10 --batch-size 32 --seed i`` (the
reference study's network and budget in plain Keras), alternating which goes first. Each
wall time, from the spawn to the exit, is split at the first training step and at the end
of the last epoch:

- start: imports, config, data, store, model build, until training begins;
- epochs: training and validation;
- after: evaluation, per-image predictions, plots, model file, MLflow.

For the default command the two marks come from its own ``epoch_time_s`` history (each
point's timestamp is the end of that epoch); the script prints them. Peak memory is each
process's largest resident set (``wait4``).

Goals (issue 26): test accuracy at least 93.5 % (mean of the seeds) and the whole command
in at most 0.8x the reference script's wall time (median of the pairs).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import ROOT, cpu_kind, environment, machine, median
from results import write_part

GOAL_ACC, GOAL_RATIO = 0.935, 0.8
PHASES = ("start", "epochs", "after")
NAMES = ("default", "reference")


def timed(args: list[str], cwd: Path) -> tuple[float, float, float, str]:
    """Run ``python <args>``: (spawned at, ended at, peak resident MB, stdout)."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        spawned = time.time()
        child = subprocess.Popen(
            [sys.executable, *args], cwd=cwd, env=environment(), stdout=out, stderr=err
        )
        _, status, usage = os.wait4(child.pid, 0)
        ended = time.time()
        child.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0), err.seek(0)
        if child.returncode != 0:
            raise SystemExit(f"failed: python {' '.join(args)}\n{err.read()[-3000:]}")
        return spawned, ended, usage.ru_maxrss / 1024, out.read()


def row(name: str, seed: int, spawned, first, last, ended, peak, acc) -> dict:
    return {
        "command": name,
        "seed": seed,
        "start": first - spawned,
        "epochs": last - first,
        "after": ended - last,
        "whole": ended - spawned,
        "acc": acc,
        "peak_mb": peak,
    }


def default(seed: int, overrides: list[str]) -> dict:
    import mlflow

    with tempfile.TemporaryDirectory() as tmp:
        store = Path(tmp) / "mlflow.db"
        args = ["-m", "experiments", f"seed={seed}", *overrides]
        spawned, ended, peak, _ = timed([*args, f"mlflow.tracking_uri=sqlite:///{store}"], tmp)
        client = mlflow.MlflowClient(f"sqlite:///{store}")
        found = client.search_runs([client.get_experiment_by_name("experiments").experiment_id])
        history = client.get_metric_history(found[0].info.run_id, "epoch_time_s")
        history = sorted(history, key=lambda m: m.step)
        first = history[0].timestamp / 1000 - history[0].value
        last = history[-1].timestamp / 1000
        acc = found[0].data.metrics["test_accuracy"]
        precision = found[0].data.params.get("runtime.precision", "?")
    return row(f"default ({precision})", seed, spawned, first, last, ended, peak, acc)


def reference(seed: int) -> dict:
    script = str(ROOT / "benchmarks" / "bare_keras.py")
    spawned, ended, peak, out = timed(
        [script, "--epochs", "10", "--batch-size", "32", "--seed", str(seed)], ROOT
    )
    marks = json.loads(out.strip().splitlines()[-1])
    first, last = marks["first_step_at"], marks["epochs_end_at"]
    return row("reference", seed, spawned, first, last, ended, peak, marks["test_accuracy"])


def measure(pairs: int, overrides: list[str]) -> list[dict]:
    rows = []
    for i in range(pairs):
        seed = i + 1
        order = ("default", "reference") if i % 2 == 0 else ("reference", "default")
        for name in order:
            rows.append(default(seed, overrides) if name == "default" else reference(seed))
            print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    return rows


def section(rows: list[dict], overrides: list[str]) -> str:
    by = {name: [r for r in rows if r["command"].startswith(name)] for name in NAMES}
    whole = {name: median([r["whole"] for r in rs]) for name, rs in by.items()}
    ratio = whole["default"] / whole["reference"]
    mean_acc = statistics.mean(r["acc"] for r in by["default"])
    command = "`python -m experiments" + "".join(f" {o}" for o in overrides) + "`"
    lines = [
        "## The default command against the reference script, whole command",
        "",
        machine(),
        "",
        f"Default: {command}, seed = the pair's number; reference: `bare_keras.py --epochs 10 "
        "--batch-size 32`, the same seed. Alternated, the default first in odd pairs.",
        "",
        "| command | seed | start s | epochs s | after s | whole s | test accuracy | peak MB |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['command']} | {r['seed']} | {r['start']:.1f} | {r['epochs']:.1f} | "
            f"{r['after']:.1f} | {r['whole']:.1f} | {r['acc']:.4f} | {r['peak_mb']:.0f} |"
        )
    for name, rs in by.items():
        parts = " | ".join(f"{median([r[k] for r in rs]):.1f}" for k in PHASES)
        lines.append(f"| {name}, median | | {parts} | {whole[name]:.1f} | | |")
    acc_met = "met" if mean_acc >= GOAL_ACC else "missed"
    ratio_met = "met" if ratio <= GOAL_RATIO else "missed"
    lines += [
        "",
        f"Whole command, default / reference (medians): **{ratio:.2f}x** (goal at most "
        f"{GOAL_RATIO}x: {ratio_met}). Default test accuracy, mean of seeds "
        f"{', '.join(str(r['seed']) for r in by['default'])}: **{mean_acc:.4f}** (goal at "
        f"least {GOAL_ACC}: {acc_met}).",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("overrides", nargs="*", help="overrides of the default command")
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--write", action="store_true", help="into RESULTS.md, this CPU's part")
    args = parser.parse_args()
    text = section(measure(args.pairs, args.overrides), args.overrides)
    print(text)
    if args.write:
        command = "python benchmarks/whole_command.py" + "".join(
            f" {a}" for a in sys.argv[1:] if a != "--write"
        )
        write_part(cpu_kind(), "whole_command", command, text)


if __name__ == "__main__":
    main()
