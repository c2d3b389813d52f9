"""The transfer machinery really transfers: a base pretrained in an earlier run helps."""

from __future__ import annotations

import mlflow
import numpy as np
import pytest

from experiments.errors import ConfigError
from experiments.training import train
from experiments.training.settings import compose

PRETRAIN = ["dataset.classes=[0,2,4,6,8]", "dataset.limit=6000", "trainer.epochs=2"]
TARGET = ["dataset.classes=[1,3,5,7,9]", "dataset.limit=40", "trainer.epochs=10"]


@pytest.mark.slow
def test_transfer_from_own_run_beats_scratch_with_the_same_budget(
    workdir, store_uri, fashion_dir, record_property
):
    # The README's example: the reference network.
    common = [
        f"mlflow.tracking_uri={store_uri}",
        "trainer.verbose=0",
        "cost=quick",
        "interpretation=off",
        "mlflow.samples=0",
        "backbone=custom_cnn",
        "trainer.checkpoints=false",  # no resume here: a model file per epoch is not tested
    ]
    train.run(compose([*common, *PRETRAIN, "mlflow.run_name=pretrain"]))
    pretrain = mlflow.search_runs(
        experiment_names=["experiments"],
        filter_string="run_name = 'pretrain'",
        output_format="list",
    )[0]
    weights = f"backbone.weights=runs:/{pretrain.info.run_id}/model"

    accuracy = {"transfer": [], "scratch": []}
    for seed in (1, 2, 3):
        for phase, extra in (("transfer", [weights]), ("scratch", [])):
            overrides = [*common, *TARGET, f"phase={phase}", f"seed={seed}", *extra]
            train.run(compose([*overrides, "mlflow.log_model=false", f"mlflow.run_name={phase}"]))
            run = mlflow.search_runs(
                experiment_names=["experiments"],
                output_format="list",
                max_results=1,
                order_by=["attributes.start_time DESC"],
            )[0]
            assert run.data.params["data.classes"] == "Trouser,Dress,Sandal,Sneaker,Ankle boot"
            assert run.data.params["data.train_size"] == "40"
            accuracy[phase].append(run.data.metrics["test_accuracy"])
    record_property("test_accuracy", accuracy)  # the margin, in the JUnit report
    # Three seeds each, same data, epochs and optimizer: the pretrained base must win on average.
    assert np.mean(accuracy["transfer"]) > np.mean(accuracy["scratch"]), accuracy

    # The same weights into another architecture: refused before any run opens. (This was
    # a test of its own, which trained a run only to have weights to refuse.)
    cfg = compose(
        [
            *(o for o in common if not o.startswith("backbone=")),
            "backbone=mobilenet",
            weights,
            "phase=transfer",
            "dataset=shapes",
            "dataset.image_size=32",
            "dataset.per_class=4",
        ]
    )
    with pytest.raises(ConfigError, match="backbone.weights") as info:
        train.run(cfg)
    assert "does not fit mobilenet" in str(info.value)
    assert len(mlflow.search_runs(experiment_names=["experiments"], output_format="list")) == 7


def test_missing_run_is_refused(workdir, store_uri, fashion_dir):
    cfg = compose(
        [
            f"mlflow.tracking_uri={store_uri}",
            "phase=transfer",
            "backbone.weights=runs:/0123456789abcdef0123456789abcdef/model",
            "dataset.limit=64",
        ]
    )
    with pytest.raises(ConfigError, match="cannot load a model from runs:/0123456789abcdef"):
        train.run(cfg)


def test_missing_weights_file_is_refused_before_anything_runs(tmp_path):
    with pytest.raises(ConfigError, match="backbone.weights"):
        compose(["backbone=vgg16", "dataset=shapes", f"backbone.weights={tmp_path / 'nope.h5'}"])
