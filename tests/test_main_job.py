"""The main job end to end: the real command line lands a complete MLflow run."""

from __future__ import annotations

import json
import subprocess
import sys

import mlflow
import numpy as np
import pytest
from helpers import app_main, in_process, user_environment

from experiments.training import train
from experiments.training.settings import compose

QUICK = [
    "dataset.limit=300",
    "trainer.epochs=1",
    "trainer.verbose=0",
    "cost=quick",
    "mlflow.samples=6",
]


def only_run(uri: str, experiment: str = "experiments"):
    runs = mlflow.MlflowClient(uri).search_runs(
        [mlflow.MlflowClient(uri).get_experiment_by_name(experiment).experiment_id]
    )
    assert len(runs) == 1, [r.info.run_name for r in runs]
    return runs[0]


@pytest.mark.slow
def test_command_line_run_lands_a_complete_mlflow_run(workdir, store_uri, fashion_dir):
    """As a user runs it: no TF_CPP_MIN_LOG_LEVEL of their own, Keras' progress bar on."""
    env = {k: v for k, v in user_environment().items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "experiments",
            *[o for o in QUICK if o != "trainer.verbose=0"],
            "trainer.epochs=2",
            f"mlflow.tracking_uri={store_uri}",
        ],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    console = (result.stdout + result.stderr).splitlines()
    tensorflow = ("E0000", "W0000", "I0000")
    notes = ("oneDNN", "absl::InitializeLog", "Warning:")
    noisy = [ln for ln in console if ln.startswith(tensorflow) or any(n in ln for n in notes)]
    assert noisy == [], noisy
    chosen = [
        line for line in console if "[experiments.training.train][INFO] - Precision: " in line
    ]
    assert len(chosen) == 1, console
    log = result.stdout + result.stderr
    source = f"Fashion-MNIST source: Debian package dataset-fashion-mnist ({fashion_dir})"
    env_source = f"Fashion-MNIST source: $FASHION_MNIST_DIR ({fashion_dir})"
    assert source in log or env_source in log
    assert "mlflow ui --backend-store-uri" in log and "--host 127.0.0.1" in log

    run = only_run(store_uri)
    client = mlflow.MlflowClient(store_uri)
    assert run.info.status == "FINISHED"
    assert run.info.run_name == "compact_cnn-scratch-adam-lr0.002"
    params = run.data.params
    assert params["optimizer.lr"] == "0.002" and params["trainer.epochs"] == "2"
    assert params["dataset.limit"] == "300" and params["data.train_size"] == "300"
    assert (
        run.data.tags["backbone"] == "compact_cnn" and run.data.tags["dataset"] == "fashion_mnist"
    )

    metrics = run.data.metrics
    for name in ("loss", "accuracy", "val_loss", "val_accuracy"):
        steps = [m.step for m in client.get_metric_history(run.info.run_id, name)]
        assert steps == [0, 1], name
    assert 0.1 < metrics["test_accuracy"] <= 1.0 and metrics["test_loss"] > 0
    # 130,410 weights; the head's BatchNormalization keeps 128 moving statistics untrained.
    assert metrics["total_params"] == 130410 and metrics["trainable_params"] == 130282
    assert metrics["train_time_s"] > 0

    artifacts = mlflow.artifacts.download_artifacts(
        run_id=run.info.run_id, tracking_uri=store_uri, dst_path=str(workdir / "dl")
    )
    from pathlib import Path

    artifacts = Path(artifacts)
    assert "lr: 0.002" in (artifacts / "config.yaml").read_text()
    for png in ("plots/learning_curves.png", "plots/predictions.png"):
        assert (artifacts / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    table = json.loads((artifacts / "predictions/top_k.json").read_text())
    assert table["columns"][:3] == ["sample", "true", "top1"] and len(table["data"]) == 6
    for png in ("plots/confusion_matrix.png", "plots/misclassified.png"):
        assert (artifacts / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # Checkpoints: the last epoch's and the best epoch's whole model, logged at the end.
    for name in ("last.keras", "best.keras"):
        assert (artifacts / "checkpoints" / name).stat().st_size > 100_000
    assert (workdir / "checkpoints" / run.info.run_id / "last.keras").is_file()
    per_class = json.loads((artifacts / "metrics/per_class.json").read_text())
    assert per_class["columns"] == ["class", "precision", "recall", "f1", "support"]
    assert sum(row[4] for row in per_class["data"]) == 10000  # the whole test set
    # Interpretation: the confusions, and the galleries with their Grad-CAM maps.
    pairs = json.loads((artifacts / "interpretation/confused_pairs.json").read_text())
    assert pairs["columns"] == ["true", "predicted", "count", "share"] and len(pairs["data"]) == 5
    counts = [row[2] for row in pairs["data"]]
    assert counts == sorted(counts, reverse=True) and all(row[0] != row[1] for row in pairs["data"])
    for png in ("interpretation/top_losses.png", "interpretation/correct.png"):
        assert (artifacts / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert 0 < metrics["interpretation_time_s"] < metrics["train_time_s"] + 60

    tags = run.data.tags
    assert "dataset.limit=300" in tags["hydra.overrides"] and "experiments" in tags["command"]
    assert len(tags["git.commit"]) == 40 and tags["git.dirty"] in ("true", "false")
    inputs = {i.tags[0].value: i.dataset for i in run.inputs.dataset_inputs}
    assert set(inputs) == {"train", "val", "test"}
    assert inputs["train"].name == "fashion_mnist-train" and inputs["train"].digest

    assert params["trainer.precision"] == "auto"
    assert params["runtime.precision"] in ("float32", "mixed_bfloat16")
    assert params["runtime.precision_reason"].startswith("auto: ")
    assert f"Precision: {params['runtime.precision']} (auto: " in chosen[0]

    mlflow.set_tracking_uri(store_uri)
    model = mlflow.pyfunc.load_model(f"runs:/{run.info.run_id}/model")
    assert model.metadata.metadata["class_names"][0] == "T-shirt/top"
    raw = np.random.default_rng(0).integers(0, 256, (5, 28, 28, 1)).astype("float32")
    probs = np.asarray(model.predict(raw))
    assert probs.shape == (5, 10)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)


@pytest.mark.slow
def test_same_seed_gives_the_same_test_accuracy(workdir, store_uri, fashion_dir):
    overrides = [*QUICK, f"mlflow.tracking_uri={store_uri}", "mlflow.log_model=false"]
    train.run(compose([*overrides, "mlflow.run_name=a"]))
    train.run(compose([*overrides, "mlflow.run_name=b"]))
    train.run(compose([*overrides, "mlflow.run_name=c", "seed=7"]))
    runs = {
        r.info.run_name: r.data.metrics
        for r in mlflow.search_runs(experiment_names=["experiments"], output_format="list")
    }
    assert runs["a"]["test_accuracy"] == runs["b"]["test_accuracy"]
    assert runs["a"]["test_loss"] == runs["b"]["test_loss"]
    assert runs["a"]["test_loss"] != runs["c"]["test_loss"]


def test_exception_ends_the_run_failed(workdir, store_uri, fashion_dir, monkeypatch):
    from experiments.training.phases import scratch

    def broken(*args, **kwargs):
        raise RuntimeError("boom in training")

    monkeypatch.setattr(scratch, "train", broken)
    with pytest.raises(RuntimeError, match="boom"):
        train.run(compose([*QUICK, f"mlflow.tracking_uri={store_uri}"]))
    run = only_run(store_uri)
    assert run.info.status == "FAILED"
    assert run.data.params["optimizer.lr"] == "0.002"  # what was logged before stays


@pytest.mark.slow
def test_default_store_is_sqlite_in_the_working_directory(workdir, fashion_dir):
    # A stale file-store layout must not silently take over (MLflow 3 would switch to it).
    (workdir / "mlruns" / "0").mkdir(parents=True)
    (workdir / "mlruns" / "0" / "meta.yaml").write_text("name: Default\n")
    result = in_process(app_main, *QUICK, "mlflow.log_model=false", cwd=workdir)
    assert result.returncode == 0, result.stderr[-3000:]
    uri = f"sqlite:///{workdir / 'mlflow.db'}"
    run = only_run(uri)
    assert run.info.artifact_uri.startswith((workdir / "mlruns").as_uri())


@pytest.mark.slow
def test_environment_tracking_uri_is_used_when_not_configured(workdir, fashion_dir):
    uri = f"sqlite:///{workdir / 'store' / 'env.db'}"
    result = in_process(
        app_main,
        *QUICK,
        "mlflow.log_model=false",
        "mlflow.experiment_name=from_env",
        cwd=workdir,
        env={"MLFLOW_TRACKING_URI": uri},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert only_run(uri, "from_env").info.status == "FINISHED"
    assert not (workdir / "mlflow.db").exists()
