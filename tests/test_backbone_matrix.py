"""Every backbone and every phase complete a one-epoch run on shapes and log a usable model."""

from __future__ import annotations

import warnings

import mlflow
import numpy as np
import pytest
from helpers import run_cli

from experiments.data import shapes
from experiments.training import train
from experiments.training.settings import compose

# Each backbone and each phase, and every phase with a small CNN and with a keras.applications
# base: the phases' code does not depend on the backbone, nor the backbones' on the phase.
# Xception's fine-tuning runs on the command line below, and custom_cnn's scratch runs in
# test_transfer_from_run.py; the other pairs (Xception's and MobileNet's scratch runs, the
# costliest at 30 and 17 s) would add nothing these do not check.
PAIRS = [
    ("compact_cnn", "scratch"),
    ("compact_cnn", "transfer"),
    ("custom_cnn", "finetune"),
    ("vgg16", "scratch"),
    ("vgg16", "finetune"),
    ("xception", "transfer"),
    ("mobilenet", "transfer"),
    ("mobilenet", "finetune"),
]
QUICK = [
    "dataset=shapes",
    "dataset.image_size=72",
    "dataset.per_class=8",
    "backbone.weights=null",
    "trainer.epochs=1",
    "trainer.verbose=0",
    "cost=quick",
    "interpretation=off",
    "mlflow.samples=4",
    "trainer.checkpoints=false",  # checkpoints are tested with the main job
]


@pytest.mark.slow
@pytest.mark.parametrize(("backbone", "phase"), PAIRS, ids=[f"{b}-{p}" for b, p in PAIRS])
def test_backbone_and_phase_land_a_model_that_predicts_raw_images(
    workdir, store_uri, backbone, phase
):
    warmup = ["phase.warmup_epochs=1"] if phase == "finetune" else []  # finetune's own key
    cfg = compose(
        [
            *QUICK,
            *warmup,
            f"backbone={backbone}",
            f"phase={phase}",
            f"mlflow.tracking_uri={store_uri}",
        ]
    )
    train.run(cfg)
    run = mlflow.search_runs(experiment_names=["experiments"], output_format="list")[0]
    assert run.info.status == "FINISHED"
    assert run.data.tags["backbone"] == backbone and run.data.tags["phase"] == phase
    assert {"val_accuracy", "test_accuracy", "trainable_params"} <= set(run.data.metrics)
    if phase == "transfer":
        assert run.data.metrics["trainable_params"] < run.data.metrics["total_params"]

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = mlflow.pyfunc.load_model(f"runs:/{run.info.run_id}/model")
    # The saved optimizer state matches the model's trainable weights.
    assert not [w for w in caught if "Skipping variable loading" in str(w.message)]
    assert model.metadata.metadata["class_names"] == sorted(shapes.CLASSES)
    raw = np.random.default_rng(0).integers(0, 256, (3, 72, 72, 3)).astype("float32")
    probs = np.asarray(model.predict(raw))
    assert probs.shape == (3, 4)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)


@pytest.mark.slow
def test_finetune_on_the_command_line_logs_both_stages_on_one_axis(workdir, store_uri):
    result = run_cli(
        *QUICK,
        "backbone=xception",
        "phase=finetune",
        "phase.warmup_epochs=1",
        "trainer.epochs=2",
        f"mlflow.tracking_uri={store_uri}",
        cwd=workdir,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    client = mlflow.MlflowClient(store_uri)
    run = client.search_runs([client.get_experiment_by_name("experiments").experiment_id])[0]
    assert run.info.run_name == "xception-finetune-adam-lr1e-05"
    assert run.data.tags["stages"] == "warmup@0,finetune@1"
    history = client.get_metric_history(run.info.run_id, "val_accuracy")
    assert [m.step for m in history] == [0, 1, 2]
    stage = {m.step: m.value for m in client.get_metric_history(run.info.run_id, "stage")}
    assert stage == {0: 0.0, 1: 1.0, 2: 1.0}
    assert "Computing the frozen base's features of" in result.stdout + result.stderr
    assert run.data.tags["frozen_features"] == "computed"  # by the warm-up, in the image cache


@pytest.mark.slow
def test_missing_imagenet_weights_stop_before_training_with_both_remedies(workdir, store_uri):
    result = run_cli(
        "backbone=mobilenet",
        "phase=transfer",
        "dataset=shapes",
        "dataset.image_size=72",
        "dataset.per_class=4",
        f"mlflow.tracking_uri={store_uri}",
        cwd=workdir,
        # An empty cache, and no way out even on a machine with internet access.
        env={
            "KERAS_HOME": str(workdir / "keras_home"),
            "HTTPS_PROXY": "http://127.0.0.1:9",
            "https_proxy": "http://127.0.0.1:9",
        },
    )
    assert result.returncode == 2
    error = result.stderr.strip().splitlines()[-1]
    assert error.startswith("error: backbone.weights=imagenet")
    assert "mobilenet_1_0_224_tf_no_top.h5" in error
    assert str(workdir / "keras_home" / "models") in error
    assert "backbone.weights=null" in error
    assert not (workdir / "data").exists()  # said before any image was made or decoded
    client = mlflow.MlflowClient(store_uri)
    assert client.search_runs([client.get_experiment_by_name("experiments").experiment_id]) == []


def test_image_size_below_the_backbone_minimum_is_rejected_before_tensorflow(workdir):
    result = run_cli("backbone=xception", "dataset=shapes", "dataset.image_size=64", cwd=workdir)
    assert result.returncode == 2
    assert (
        "dataset.image_size: 64 is below the minimum of 71 for backbone xception" in result.stderr
    )
    assert not (workdir / "data").exists()  # nothing generated, nothing loaded
