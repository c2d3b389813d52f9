"""tf.distribute: a mirrored run over two logical CPUs logs one set of metrics."""

from __future__ import annotations

import mlflow
import pytest
from helpers import run_cli


@pytest.mark.slow
def test_mirrored_on_two_logical_cpus_logs_metrics_once(workdir, store_uri, fashion_dir):
    result = run_cli(
        "trainer.strategy=mirrored",
        "trainer.logical_cpus=2",
        "dataset.limit=256",
        "trainer.epochs=2",
        "trainer.batch_size=64",
        "trainer.verbose=0",
        "cost=quick",
        "interpretation=off",
        "mlflow.samples=2",
        f"mlflow.tracking_uri={store_uri}",
        cwd=workdir,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    client = mlflow.MlflowClient(store_uri)
    run = client.search_runs([client.get_experiment_by_name("experiments").experiment_id])[0]
    assert run.info.status == "FINISHED"
    assert run.data.params["runtime.replicas"] == "2"
    assert run.data.params["trainer.batch_size"] == "64"  # the global batch, as given
    assert run.data.params["optimizer.lr"] == "0.002"  # not rescaled by the replica count
    # Keras fails with several batches per call under a strategy: one, and a warning.
    assert "trainer.steps_per_execution=16 is not supported with trainer.strategy" in (
        result.stdout + result.stderr
    )
    for name in ("loss", "accuracy", "val_loss", "val_accuracy"):
        assert [m.step for m in client.get_metric_history(run.info.run_id, name)] == [0, 1]
    assert len(client.get_metric_history(run.info.run_id, "test_accuracy")) == 1


def test_unknown_strategy_is_rejected(workdir):
    result = run_cli("trainer.strategy=tpu", cwd=workdir)
    assert result.returncode == 2 and "trainer.strategy" in result.stderr
