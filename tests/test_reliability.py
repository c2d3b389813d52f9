"""Failing fast, failing cleanly, and losing nothing that was logged."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import mlflow
from helpers import run_cli, user_environment
from omegaconf import OmegaConf

from experiments import provenance, tracking
from experiments.config import compose, flatten


def test_unreachable_tracking_server_fails_in_seconds_before_training(workdir, fashion_dir):
    started = time.monotonic()
    result = run_cli("mlflow.tracking_uri=http://127.0.0.1:9", "dataset.limit=100", cwd=workdir)
    assert time.monotonic() - started < 30
    assert result.returncode == 2
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error: mlflow.tracking_uri=http://127.0.0.1:9")
    assert "does not answer" in last
    assert "Fashion-MNIST source" not in result.stdout + result.stderr  # stopped before the data


def test_nan_loss_stops_training_and_fails_the_run_with_the_reason(workdir, store_uri, fashion_dir):
    result = run_cli(
        "optimizer=sgd", "optimizer.lr=1e12", "dataset.limit=512", "trainer.epochs=5",
        "trainer.verbose=0", f"mlflow.tracking_uri={store_uri}", cwd=workdir,
    )  # fmt: skip
    assert result.returncode == 2
    assert "loss became NaN or infinite in epoch 1" in result.stderr.strip().splitlines()[-1]
    run = mlflow.search_runs(experiment_names=["experiments"], output_format="list")[0]
    assert run.info.status == "FAILED"
    assert "NaN" in run.data.tags["failure_reason"]
    assert run.data.params["optimizer.lr"] == "1000000000000.0"  # what was logged stays
    client = mlflow.MlflowClient(store_uri)
    assert len(client.get_metric_history(run.info.run_id, "loss")) == 1  # stopped at once


def test_sigterm_ends_the_run_killed_and_keeps_its_metrics(workdir, store_uri, fashion_dir):
    command = [
        sys.executable, "-m", "experiments", "dataset.limit=20000", "trainer.epochs=20",
        "trainer.verbose=0", f"mlflow.tracking_uri={store_uri}",
    ]  # fmt: skip
    process = subprocess.Popen(
        command, cwd=workdir, env=user_environment(), stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    client = mlflow.MlflowClient(store_uri)
    deadline = time.monotonic() + 120
    run_id = None
    while time.monotonic() < deadline and process.poll() is None:
        try:
            runs = client.search_runs([client.get_experiment_by_name("experiments").experiment_id])
        except Exception:  # the store is being created
            runs = []
        if runs and client.get_metric_history(runs[0].info.run_id, "val_accuracy"):
            run_id = runs[0].info.run_id
            break
        time.sleep(0.5)
    assert run_id, "the run never logged its first epoch"
    process.send_signal(signal.SIGTERM)
    stdout, stderr = process.communicate(timeout=60)
    assert process.returncode != 0
    run = client.get_run(run_id)
    assert run.info.status == "KILLED"
    assert "KeyboardInterrupt" in run.data.tags["failure_reason"]
    assert len(client.get_metric_history(run_id, "val_accuracy")) >= 1
    # The latest checkpoint stays on disk, its folder is in the log, and it was logged.
    folder = workdir / "checkpoints" / run_id
    assert (folder / "last.keras").is_file()
    assert str(folder) in (stdout + stderr).decode()
    logged = {a.path for a in client.list_artifacts(run_id, "checkpoints")}
    assert "checkpoints/last.keras" in logged


def test_credentials_never_become_params_or_tags(monkeypatch):
    secret_uri = "http://alice:s3cret@127.0.0.1:5000"
    flat = flatten(compose([f"mlflow.tracking_uri={secret_uri}"]))
    assert flat["mlflow.tracking_uri"] == "http://***@127.0.0.1:5000"
    assert "s3cret" not in OmegaConf.to_yaml(OmegaConf.create(flat))
    monkeypatch.setattr(sys, "argv", ["experiments", f"mlflow.tracking_uri={secret_uri}"])
    tags = provenance.tags()
    assert tags["command"] == "experiments mlflow.tracking_uri=http://***@127.0.0.1:5000"
    assert tracking.redact("postgresql://bob:p@ss@db/mlflow") == "postgresql://***@db/mlflow"
    assert tracking.redact("http://host/path@x") == "http://host/path@x"  # not credentials


def test_server_check_sends_the_uri_credentials_instead_of_refusing_them(monkeypatch):
    import urllib.request

    seen = {}

    def fake_urlopen(request, timeout):
        seen["url"], seen["auth"] = request.full_url, request.get_header("Authorization")
        raise OSError("refused")

    monkeypatch.setattr(urllib.request, "urlopen", fake_urlopen)
    try:
        tracking.check_server("http://alice:s3cret@127.0.0.1:9")
    except Exception as exc:
        assert "s3cret" not in str(exc)
    assert seen["url"] == "http://127.0.0.1:9/health"
    assert seen["auth"] == "Basic YWxpY2U6czNjcmV0"  # base64 of alice:s3cret
