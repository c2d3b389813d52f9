"""A real `mlflow server` on loopback: a run, its artifacts and its model land there."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.request

import mlflow
import numpy as np
import pytest
from helpers import run_cli, user_environment


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def server(tmp_path):
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port),
         "--backend-store-uri", f"sqlite:///{tmp_path / 'server.db'}",
         "--artifacts-destination", str(tmp_path / "server-artifacts"), "--workers", "1"],
        env=user_environment(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"{url}/health", timeout=1)
            break
        except OSError:
            time.sleep(0.5)
    else:
        process.kill()
        pytest.fail("mlflow server did not start within 60 s")
    yield url
    process.terminate()
    process.wait(timeout=30)


def test_run_artifacts_and_model_land_on_the_server(workdir, server, fashion_dir):
    result = run_cli(
        "dataset.limit=200", "trainer.epochs=2", "trainer.verbose=0", "mlflow.samples=4",
        f"mlflow.tracking_uri={server}", cwd=workdir,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    assert not (workdir / "mlflow.db").exists() and not (workdir / "mlruns").exists()

    client = mlflow.MlflowClient(server)
    run = client.search_runs([client.get_experiment_by_name("experiments").experiment_id])[0]
    assert run.info.status == "FINISHED"
    assert [m.step for m in client.get_metric_history(run.info.run_id, "val_accuracy")] == [0, 1]
    assert {"test_accuracy", "test_loss", "best_val_accuracy"} <= set(run.data.metrics)
    paths = {a.path for a in client.list_artifacts(run.info.run_id, "plots")}
    assert {"plots/learning_curves.png", "plots/confusion_matrix.png"} <= paths

    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(server)
    try:
        model = mlflow.pyfunc.load_model(f"runs:/{run.info.run_id}/model")
    finally:
        mlflow.set_tracking_uri(previous)
    probs = np.asarray(model.predict(np.zeros((2, 28, 28, 1), np.float32)))
    assert probs.shape == (2, 10)
