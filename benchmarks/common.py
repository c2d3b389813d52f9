"""What every benchmark needs: the machine, running the real command line, medians."""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def cpu_kind() -> str:
    """The CPU and the features that decide its speed: ``AMD EPYC (AVX512-BF16, AVX512F; no
    AMX-BF16)``. RESULTS.md keeps one section per kind: figures compare only within one."""
    from experiments.training.precision import describe_cpu

    return describe_cpu()


def machine() -> str:
    """One line: cores, the CPU kind, Python, TensorFlow, Keras and MLflow versions."""
    from importlib.metadata import version

    tf = "tensorflow-cpu" if _has("tensorflow-cpu") else "tensorflow"
    return (
        f"{os.cpu_count()} cores, {cpu_kind()}, Python {platform.python_version()}, "
        f"TensorFlow {version(tf)}, Keras {version('keras')}, MLflow {version('mlflow')}"
    )


def _has(distribution: str) -> bool:
    from importlib.metadata import PackageNotFoundError, version

    try:
        version(distribution)
    except PackageNotFoundError:
        return False
    return True


def environment() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTEST_CURRENT_TEST"}
    env.pop("MLFLOW_TRACKING_URI", None)
    env["TF_CPP_MIN_LOG_LEVEL"] = "2"
    return env


def run(
    args: list[str], cwd: Path, check: bool = True
) -> tuple[float, subprocess.CompletedProcess]:
    """Run ``python <args>`` in ``cwd``; return its wall time and the completed process."""
    started = time.perf_counter()
    result = subprocess.run(
        [sys.executable, *args], cwd=cwd, env=environment(), capture_output=True, text=True
    )
    elapsed = time.perf_counter() - started
    if check and result.returncode != 0:
        raise SystemExit(f"failed: python {' '.join(args)}\n{result.stderr[-3000:]}")
    return elapsed, result


def suite_arguments(doc: str, kept: str) -> argparse.Namespace:
    """The suite scripts' command line: pytest's arguments after ``--``, or ``--read`` a
    file (``kept``: what kind) that an earlier run wrote."""
    parser = argparse.ArgumentParser(description=doc.split("\n")[0])
    parser.add_argument("--read", type=Path, help=f"{kept} to summarise instead")
    parser.add_argument("pytest_args", nargs="*", help="after --: pytest's arguments")
    return parser.parse_args()


def median(values: list[float]) -> float:
    return statistics.median(values)


def spread(values: list[float]) -> str:
    """``mean ± standard deviation`` (or the single value)."""
    if len(values) < 2:
        return f"{values[0]:.4f}"
    return f"{statistics.mean(values):.4f} ± {statistics.stdev(values):.4f}"


def last_run(store: Path):
    """The newest run in the store at ``store`` (a sqlite file)."""
    import mlflow

    client = mlflow.MlflowClient(f"sqlite:///{store}")
    experiments = client.search_experiments()
    runs = client.search_runs([e.experiment_id for e in experiments], order_by=["start_time DESC"])
    return client, runs[0]
