"""Failing fast, failing cleanly, and losing nothing that was logged."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
import time

import mlflow
import pytest
from helpers import (
    app_main,
    first_epoch_run_id,
    in_process,
    killed_after_first_epoch,
    resume_cli,
    user_environment,
)
from omegaconf import OmegaConf

from experiments import uris
from experiments.config.schema import flatten
from experiments.tracking import provenance, store
from experiments.training.settings import compose


def test_unreachable_tracking_server_fails_in_seconds_before_training(workdir, fashion_dir):
    started = time.monotonic()
    result = in_process(
        app_main, "mlflow.tracking_uri=http://127.0.0.1:9", "dataset.limit=100", cwd=workdir
    )
    assert time.monotonic() - started < 30
    assert result.returncode == 2
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error: mlflow.tracking_uri=http://127.0.0.1:9")
    assert "does not answer" in last
    assert "Fashion-MNIST source" not in result.stdout + result.stderr  # stopped before the data


@pytest.mark.slow
def test_nan_loss_stops_training_and_fails_the_run_with_the_reason(workdir, store_uri, fashion_dir):
    result = in_process(
        app_main,
        "optimizer=sgd",
        "optimizer.lr=1e12",
        "dataset.limit=512",
        "trainer.epochs=5",
        "trainer.verbose=0",
        "cost=quick",
        "interpretation=off",
        f"mlflow.tracking_uri={store_uri}",
        cwd=workdir,
    )
    assert result.returncode == 2
    assert "loss became NaN or infinite in epoch 1" in result.stderr.strip().splitlines()[-1]
    run = mlflow.search_runs(experiment_names=["experiments"], output_format="list")[0]
    assert run.info.status == "FAILED"
    assert "NaN" in run.data.tags["failure_reason"]
    assert run.data.params["optimizer.lr"] == "1000000000000.0"  # what was logged stays
    client = mlflow.MlflowClient(store_uri)
    assert len(client.get_metric_history(run.info.run_id, "loss")) == 1  # stopped at once


@pytest.mark.slow
def test_sigterm_ends_the_run_killed_and_resume_continues_it(workdir, store_uri, fashion_dir):
    client = mlflow.MlflowClient(store_uri)
    run_id, killed = killed_after_first_epoch(
        client,
        "dataset.limit=4000",
        "trainer.epochs=6",
        "trainer.verbose=0",
        "cost=quick",
        "interpretation=off",
        f"mlflow.tracking_uri={store_uri}",
        cwd=workdir,
    )
    assert run_id, "the run never logged its first epoch"
    assert killed.returncode != 0
    run = client.get_run(run_id)
    assert run.info.status == "KILLED"
    assert "KeyboardInterrupt" in run.data.tags["failure_reason"]
    epochs_before = len(client.get_metric_history(run_id, "val_accuracy"))
    assert 1 <= epochs_before < 6
    # The latest checkpoint stays on disk, its folder is in the log, and it was logged.
    folder = workdir / "checkpoints" / run_id
    assert (folder / "last.keras").is_file() and (folder / "last.json").is_file()
    assert str(folder) in killed.stdout + killed.stderr
    logged = {a.path for a in client.list_artifacts(run_id, "checkpoints")}
    assert {"checkpoints/last.keras", "checkpoints/last.json"} <= logged
    done = json.loads((folder / "last.json").read_text())["epochs_done"]

    # Resume: the same run goes on from the checkpoint and finishes; the step axis continues.
    resumed = resume_cli(run_id, store_uri, workdir)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f"Resuming run {run_id}: stage scratch after {done} epoch(s)" in (
        resumed.stdout + resumed.stderr
    )
    runs = client.search_runs([run.info.experiment_id])
    assert [r.info.run_id for r in runs] == [run_id]  # no new run
    run = client.get_run(run_id)
    assert run.info.status == "FINISHED"
    assert run.data.tags["resumed_at_step"] == str(done)
    # Its tags describe how it ended; why it stopped before is kept under another name.
    assert "failure_reason" not in run.data.tags
    assert "KeyboardInterrupt" in run.data.tags["resumed.previous_failure_reason"]
    assert "dataset.limit=4000" in run.data.tags["command"]  # the original command stays
    assert f"trainer.resume={run_id}" in run.data.tags["resumed.command"]
    assert run.data.params["dataset.limit"] == "4000"  # its own config, not the defaults
    steps = sorted({m.step for m in client.get_metric_history(run_id, "val_accuracy")})
    assert steps == [0, 1, 2, 3, 4, 5]
    assert "test_accuracy" in run.data.metrics
    assert run.data.metrics["best_val_accuracy"] == max(
        m.value for m in client.get_metric_history(run_id, "val_accuracy")
    )
    models = mlflow.search_logged_models([run.info.experiment_id], output_format="list")
    assert [m.source_run_id for m in models] == [run_id]

    # A finished run cannot be resumed: one line, exit 2, the run untouched.
    again = in_process(
        app_main, f"trainer.resume={run_id}", f"mlflow.tracking_uri={store_uri}", cwd=workdir
    )
    assert again.returncode == 2
    last = again.stderr.strip().splitlines()[-1]
    assert last == f"error: trainer.resume: run {run_id} already FINISHED; nothing to resume"
    assert client.get_run(run_id).info.status == "FINISHED"


@pytest.mark.slow
def test_ctrl_c_ends_the_run_killed_and_keeps_its_checkpoint(workdir, store_uri, fashion_dir):
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "experiments",
            "backbone=custom_cnn",
            "dataset.limit=3000",
            "trainer.epochs=30",
            "trainer.verbose=0",
            "cost=quick",
            "interpretation=off",
            "mlflow.samples=0",
            f"mlflow.tracking_uri={store_uri}",
        ],
        cwd=workdir,
        env=user_environment(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        # As from a terminal: a shell's background job (CI) inherits SIGINT ignored.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    client = mlflow.MlflowClient(store_uri)
    run_id = first_epoch_run_id(client, process)
    assert run_id, "the run never logged its first epoch"
    process.send_signal(signal.SIGINT)  # what Ctrl-C sends
    process.communicate(timeout=60)
    assert process.returncode != 0
    run = client.get_run(run_id)
    assert run.info.status == "KILLED"
    assert "KeyboardInterrupt" in run.data.tags["failure_reason"]
    epochs = len(client.get_metric_history(run_id, "val_accuracy"))
    assert 1 <= epochs < 30
    state = json.loads((workdir / "checkpoints" / run_id / "last.json").read_text())
    assert state["epochs_done"] >= epochs  # every epoch logged was saved
    assert (workdir / "checkpoints" / run_id / "last.keras").is_file()


@pytest.mark.slow
def test_resume_refuses_unknown_runs_and_config_changes(workdir, store_uri, fashion_dir):
    unknown = in_process(
        app_main, "trainer.resume=0123abcd", f"mlflow.tracking_uri={store_uri}", cwd=workdir
    )
    assert unknown.returncode == 2
    assert unknown.stderr.strip().splitlines()[-1] == (
        "error: trainer.resume: no run 0123abcd in this tracking store"
    )
    # A killed run whose checkpoints folder is gone and never logged one.
    mlflow.set_experiment("experiments")
    with mlflow.start_run() as run:
        mlflow.log_text("backbone:\n  name: custom_cnn\n  dropout: 0.0\n", "config.yaml")
    client = mlflow.MlflowClient(store_uri)
    client.set_terminated(run.info.run_id, "KILLED")
    changed = in_process(
        app_main,
        f"trainer.resume={run.info.run_id}",
        "backbone.dropout=0.5",
        f"mlflow.tracking_uri={store_uri}",
        cwd=workdir,
    )
    assert changed.returncode == 2
    assert (
        "was trained with backbone.dropout=0.0, this command asks for 0.5"
        in (changed.stderr.strip().splitlines()[-1])
    )
    missing = in_process(
        app_main,
        f"trainer.resume={run.info.run_id}",
        f"mlflow.tracking_uri={store_uri}",
        cwd=workdir,
    )
    assert missing.returncode == 2
    assert f"run {run.info.run_id} has no checkpoint" in missing.stderr.strip().splitlines()[-1]
    assert client.get_run(run.info.run_id).info.status == "KILLED"  # untouched


@pytest.mark.slow
def test_an_unwritable_output_folder_fails_before_anything_starts(workdir, store_uri):
    # Root may write anywhere; a folder under a regular file cannot be created by anyone.
    (workdir / "a-file").write_text("not a folder")
    store_before = sorted((workdir / "store").iterdir())
    result = in_process(
        app_main, "hydra.run.dir=a-file/out", f"mlflow.tracking_uri={store_uri}", cwd=workdir
    )
    assert result.returncode == 2
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith(f"error: hydra.run.dir: cannot write to {workdir / 'a-file' / 'out'}")
    assert "Traceback" not in result.stderr
    assert sorted((workdir / "store").iterdir()) == store_before  # nothing was created
    assert (workdir / "a-file").read_text() == "not a folder"

    store = in_process(app_main, "mlflow.tracking_uri=sqlite:///a-file/x/mlflow.db", cwd=workdir)
    assert store.returncode == 2
    assert "mlflow.tracking_uri" in store.stderr.strip().splitlines()[-1]
    # The checkpoints folder is tried before the data is read.
    (workdir / "checkpoints").write_text("in the way")
    ckpt = in_process(app_main, f"mlflow.tracking_uri={store_uri}", "trainer.epochs=1", cwd=workdir)
    assert ckpt.returncode == 2
    last = ckpt.stderr.strip().splitlines()[-1]
    assert last.startswith(f"error: trainer.checkpoints: cannot write to {workdir / 'checkpoints'}")
    assert "Fashion-MNIST source" not in ckpt.stdout + ckpt.stderr


def test_credentials_never_become_params_or_tags(monkeypatch):
    secret_uri = "http://alice:s3cret@127.0.0.1:5000"
    flat = flatten(compose([f"mlflow.tracking_uri={secret_uri}"]))
    assert flat["mlflow.tracking_uri"] == "http://***@127.0.0.1:5000"
    assert "s3cret" not in OmegaConf.to_yaml(OmegaConf.create(flat))
    monkeypatch.setattr(sys, "argv", ["experiments", f"mlflow.tracking_uri={secret_uri}"])
    tags = provenance.tags()
    assert tags["command"] == "experiments mlflow.tracking_uri=http://***@127.0.0.1:5000"
    assert uris.redact("postgresql://bob:p@ss@db/mlflow") == "postgresql://***@db/mlflow"
    assert uris.redact("http://host/path@x") == "http://host/path@x"  # not credentials


def test_server_check_sends_the_uri_credentials_instead_of_refusing_them(monkeypatch):
    import urllib.request

    seen = {}

    def fake_urlopen(request, timeout):
        seen["url"], seen["auth"] = request.full_url, request.get_header("Authorization")
        raise OSError("refused")

    monkeypatch.setattr(urllib.request, "urlopen", fake_urlopen)
    try:
        store.check_server("http://alice:s3cret@127.0.0.1:9")
    except Exception as exc:
        assert "s3cret" not in str(exc)
    assert seen["url"] == "http://127.0.0.1:9/health"
    assert seen["auth"] == "Basic YWxpY2U6czNjcmV0"  # base64 of alice:s3cret


JOB = """
import sys, time
from pathlib import Path
import mlflow
from experiments.tracking import store
from experiments import uris
uri, go = sys.argv[1], Path(sys.argv[2])
while not go.exists():
    time.sleep(0.01)
experiment = store.init_store(uri, "experiments")
with mlflow.start_run(experiment_id=experiment):
    for step in range(25):
        mlflow.log_metric("loss", 1.0 / (step + 1), step=step)
"""


@pytest.mark.slow
def test_four_commands_opening_a_fresh_store_at_once_all_land(workdir):
    # Four terminals, no sweep to create the store first: the first to open it creates
    # and migrates the schema while the others wait (without that, 3 or 4 of 4 crash).
    uri = f"sqlite:///{workdir / 'store' / 'mlflow.db'}"
    go = workdir / "go"
    jobs = [
        subprocess.Popen(
            [sys.executable, "-c", JOB, uri, str(go)],
            env=user_environment(),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for _ in range(4)
    ]
    time.sleep(3)  # all four imported and waiting
    go.touch()
    outputs = [job.communicate(timeout=120)[0] for job in jobs]
    assert [job.returncode for job in jobs] == [0, 0, 0, 0], "\n".join(outputs)[-3000:]
    client = mlflow.MlflowClient(uri)
    runs = client.search_runs([client.get_experiment_by_name("experiments").experiment_id])
    assert len(runs) == 4
    for run in runs:
        assert len(client.get_metric_history(run.info.run_id, "loss")) == 25
    db = sqlite3.connect(workdir / "store" / "mlflow.db")
    assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
