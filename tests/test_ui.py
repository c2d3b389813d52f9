"""What a user sees in MLflow's UI, checked in a real browser (headless Chromium)."""

from __future__ import annotations

import shutil
import signal
import subprocess

import mlflow
import pytest
from helpers import start_server, stop

from experiments.tracking import store

CHROMIUM = shutil.which("chromium")


def rendered(url: str, tmp_path, screenshot=None) -> str:
    """The page's DOM once its scripts ran (and a screenshot of it, when asked)."""
    browser = [
        CHROMIUM,
        "--headless",
        "--no-sandbox",  # as root, in CI
        "--disable-gpu",
        f"--user-data-dir={tmp_path / 'chromium'}",
        "--virtual-time-budget=15000",
        "--window-size=1400,900",
    ]
    if screenshot is not None:
        subprocess.run(
            [*browser, f"--screenshot={screenshot}", url], capture_output=True, timeout=120
        )
    found = subprocess.run(
        [*browser, "--dump-dom", url], capture_output=True, text=True, timeout=120
    )
    return found.stdout


@pytest.mark.slow
@pytest.mark.skipif(CHROMIUM is None, reason="no chromium (apt install chromium; .ci/run does)")
def test_the_experiment_page_the_project_prints_opens_on_its_training_runs(tmp_path):
    url, server = start_server(tmp_path)
    try:
        experiment_id = store.init_store(url, "ui")
        client = mlflow.MlflowClient(url)
        run = client.create_run(experiment_id, run_name="a-training-run-to-find")
        client.log_metric(run.info.run_id, "test_accuracy", 0.9)
        client.set_terminated(run.info.run_id)

        page = store.experiment_url(url, experiment_id)
        assert page.endswith(f"/#/experiments/{experiment_id}?workflowType=machine_learning")
        shown = rendered(page, tmp_path, screenshot=tmp_path / "runs.png")
        assert "a-training-run-to-find" in shown and "Model training" in shown
        assert (tmp_path / "runs.png").stat().st_size > 10_000
        # The experiment's plain address opens MLflow's GenAI overview, without the runs:
        # why the project prints the page above (README, "Browse the runs").
        plain = rendered(f"{url}/#/experiments/{experiment_id}", tmp_path)
        assert "Traces" in plain and "a-training-run-to-find" not in plain
    finally:
        stop(server, signal.SIGKILL)  # its store is thrown away: no graceful shutdown (5 s)
