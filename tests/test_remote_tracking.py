"""A real `mlflow server` on loopback: a run, its artifacts and its model land there."""

from __future__ import annotations

import json
import signal
import subprocess
import sys

import mlflow
import numpy as np
import pytest
from helpers import first_epoch_run_id, run_cli, start_server, stop, user_environment


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """One server for the tests of this module (each writes to an experiment of its own)."""
    url, process = start_server(tmp_path_factory.mktemp("server"))
    yield url
    stop(process, signal.SIGKILL)  # its store is thrown away: no graceful shutdown (5 s)


@pytest.mark.slow
def test_run_artifacts_and_model_land_on_the_server(workdir, server, fashion_dir):
    result = run_cli(
        "dataset.limit=200",
        "trainer.epochs=2",
        "trainer.verbose=0",
        "cost=quick",
        "interpretation=off",
        "mlflow.samples=4",
        f"mlflow.tracking_uri={server}",
        "mlflow.experiment_name=landed",
        cwd=workdir,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert not (workdir / "mlflow.db").exists() and not (workdir / "mlruns").exists()

    client = mlflow.MlflowClient(server)
    [run] = client.search_runs([client.get_experiment_by_name("landed").experiment_id])
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


@pytest.mark.slow
def test_a_server_that_goes_away_mid_run_loses_nothing(workdir, tmp_path, fashion_dir):
    url, server = start_server(tmp_path)
    training = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "experiments",
            "dataset.limit=4000",
            "trainer.epochs=5",
            "trainer.verbose=0",
            "cost=quick",
            "interpretation=off",
            "mlflow.samples=4",
            "mlflow.outage_wait_s=2",  # gone for good: the end waits 2 s for it, then says so
            f"mlflow.tracking_uri={url}",
        ],
        cwd=workdir,
        env=user_environment(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        client = mlflow.MlflowClient(url)
        run_id = first_epoch_run_id(client, training)
        assert run_id, "the run never logged its first epoch"
    finally:
        stop(server, signal.SIGKILL)  # the server goes away, as a crashed one does
    stdout, stderr = training.communicate(timeout=300)

    # Training finished; the command says exactly what was not sent and where it is.
    assert training.returncode == 2, stderr[-3000:]
    unsent = workdir / "unsent" / run_id
    last = stderr.strip().splitlines()[-1]
    assert last.startswith("error: training finished, but the tracking server stopped answering")
    assert f"not sent to {url}, kept in {unsent}: " in last
    assert "the model (model.keras)" in last and "the run's end (FINISHED)" in last
    assert (unsent / "model.keras").is_file()
    assert (unsent / "artifacts" / "plots" / "learning_curves.png").is_file()
    assert json.loads((unsent / "status.json").read_text())["status"] == "FINISHED"
    kept = [json.loads(line) for line in (unsent / "metrics.jsonl").read_text().splitlines()]
    assert any("test_accuracy" in entry["metrics"] for entry in kept)
    # Every epoch is somewhere: on the server (read from its database) or in the journal.
    stored = mlflow.MlflowClient(f"sqlite:///{tmp_path / 'server.db'}")
    sent = {m.step for m in stored.get_metric_history(run_id, "val_accuracy")}
    journal = {e["step"] for e in kept if "val_accuracy" in e["metrics"]}
    assert sent | journal == {0, 1, 2, 3, 4}, (sent, journal)
    assert (workdir / "checkpoints" / run_id / "last.keras").is_file()


@pytest.mark.slow
@pytest.mark.parametrize("attempts, ok", [(1, False), (5, True)])
def test_sweep_jobs_logging_the_same_data_at_once_all_record_it(server, attempts, ok):
    """Jobs of a sweep log the same dataset at the same moment: the store's check-then-insert
    races, and a job that loses must link the dataset the winner inserted, not fail."""
    import threading

    from experiments.data.splits import Splits
    from experiments.tracking import store

    rng = np.random.default_rng(0)
    data = Splits(
        **{
            f"{axis}_{part}": rng.integers(0, 255, (20, 4, 4, 1) if axis == "x" else 20, np.uint8)
            for axis in ("x", "y")
            for part in ("train", "val", "test")
        },
        class_names=[str(n) for n in range(255)],
        source="random pixels",
    )
    client = mlflow.MlflowClient(server)
    experiment = client.create_experiment(f"race-{attempts}")
    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(server)
    gate, errors = threading.Barrier(8, timeout=60), []

    def job() -> None:
        run = client.create_run(experiment)
        try:
            with mlflow.start_run(run_id=run.info.run_id):
                gate.wait()
                store.log_inputs("race", data, attempts=attempts)
        except Exception as exc:  # noqa: BLE001 - counted below, none lost in the thread
            errors.append(exc)

    try:
        threads = [threading.Thread(target=job) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        mlflow.set_tracking_uri(previous)
    if not ok:  # the control: without trying again, the race is real (it was in 6 of 6 tries)
        if not errors:
            pytest.skip("8 jobs at once did not race this time; the retried case proves little")
        assert all("UNIQUE constraint failed" in str(e) for e in errors), errors
        return
    assert errors == []
    for run in client.search_runs([experiment]):
        assert sorted(i.dataset.name for i in run.inputs.dataset_inputs) == [
            "race-test",
            "race-train",
            "race-val",
        ]
