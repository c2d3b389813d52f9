"""Helpers for tests that drive the real command line."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def user_environment() -> dict[str, str]:
    """This process's environment as a user's shell would have it.

    Without PYTEST_CURRENT_TEST: MLflow switches on checks of its own test suite when it
    sees that variable, and the commands under test must run as they do for users.
    """
    return {k: v for k, v in os.environ.items() if k != "PYTEST_CURRENT_TEST"}


def run_cli(*overrides: str, cwd: Path, env: dict | None = None, module: str = "experiments"):
    """Run ``python -m <module> overrides...`` as a user would; return the CompletedProcess."""
    full_env = {**user_environment(), "TF_CPP_MIN_LOG_LEVEL": "2", **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", module, *overrides],
        cwd=cwd,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=600,
    )


def first_epoch_run_id(client, process, timeout: float = 120) -> str | None:
    """The id of the run ``process`` opened, once it has logged its first epoch (or None)."""
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None:
        try:
            experiment = client.get_experiment_by_name("experiments")
            runs = client.search_runs([experiment.experiment_id]) if experiment else []
        except Exception:  # the store is being created
            runs = []
        if runs and client.get_metric_history(runs[0].info.run_id, "val_accuracy"):
            return runs[0].info.run_id
        time.sleep(0.2)
    return None
