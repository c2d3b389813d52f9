"""A 2-job sweep in parallel (joblib, one thread per job) against the same sweep run serially.

    python benchmarks/sweep_parallel.py [--repeats 3] [--limit 10000] [--epochs 2]

Each repeat runs both sweeps, alternating which goes first, through the real command line
into a fresh store; the script prints the machine, every wall time, the medians and their
ratio. These machines are shared and noisy: compare medians, not single runs.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

from common import cpu_kind

LAUNCHERS = {
    "serial (basic launcher)": [],
    "parallel (joblib, n_jobs=2)": ["hydra/launcher=joblib", "hydra.launcher.n_jobs=2"],
}


def sweep_seconds(launcher: list[str], limit: int, epochs: int) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        command = [
            sys.executable,
            "-m",
            "experiments",
            "-m",
            *launcher,
            "optimizer.lr=1e-3,1e-4",
            f"dataset.limit={limit}",
            f"trainer.epochs={epochs}",
            "trainer.verbose=0",
            "mlflow.log_model=false",
            f"mlflow.tracking_uri=sqlite:///{tmp}/mlflow.db",
        ]
        started = time.perf_counter()
        result = subprocess.run(command, cwd=tmp, capture_output=True, text=True)
        elapsed = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(f"sweep failed:\n{result.stderr[-2000:]}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--limit", type=int, default=10000)
    parser.add_argument("--epochs", type=int, default=2)
    args = parser.parse_args()
    import tensorflow as tf

    print(f"machine: {os.cpu_count()} cores, {cpu_kind()}, TensorFlow {tf.__version__}")
    print(f"workload: 2 jobs, each {args.limit} images x {args.epochs} epochs, custom_cnn")
    times: dict[str, list[float]] = {name: [] for name in LAUNCHERS}
    for repeat in range(args.repeats):
        order = list(LAUNCHERS) if repeat % 2 == 0 else list(reversed(LAUNCHERS))
        for name in order:
            seconds = sweep_seconds(LAUNCHERS[name], args.limit, args.epochs)
            times[name].append(seconds)
            print(f"repeat {repeat + 1}: {name}: {seconds:.1f} s", flush=True)
    medians = {name: statistics.median(values) for name, values in times.items()}
    for name, median in medians.items():
        print(f"median {name}: {median:.1f} s")
    serial, parallel = medians.values()
    print(f"ratio parallel / serial: {parallel / serial:.2f}")


if __name__ == "__main__":
    main()
