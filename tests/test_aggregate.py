"""Seeds as an axis: intervals per run, configurations aggregated and tested against the best."""

from __future__ import annotations

import csv
import io

import mlflow
import numpy as np
import pytest
from helpers import in_process, run_cli
from PIL import Image

from experiments.commands import compare, predict
from experiments.reporting import aggregate, stats, summary
from experiments.tracking import store


def test_wilson_interval_follows_the_test_set_size():
    small = stats.wilson_interval(17 / 18, 18)
    large = stats.wilson_interval(0.9444, 10_000)
    assert small[0] < 0.75 and small[1] < 1.0  # 95% on 18 images: anywhere from ~74% up
    assert large[1] - large[0] < 0.01
    assert stats.wilson_interval(1.0, 18)[1] == 1.0 and stats.wilson_interval(0.0, 5)[0] == 0.0
    # Known value (Wilson 1927, also Newcombe 1998): 81 of 263 -> [0.2553, 0.3662].
    low, high = stats.wilson_interval(81 / 263, 263)
    assert (round(low, 4), round(high, 4)) == (0.2553, 0.3662)


def test_paired_test_separates_a_real_gap_from_seed_noise():
    best = {1: 0.900, 2: 0.910, 3: 0.920, 4: 0.905, 5: 0.915}
    # Always 2 points behind, seed for seed: a real difference, however small the spread.
    behind = {seed: value - 0.02 + 0.001 * (seed % 2) for seed, value in best.items()}
    assert stats.paired_p_value(best, behind) < 0.001
    # Ahead on some seeds and behind on others by noise: indistinguishable.
    noisy = {1: 0.905, 2: 0.903, 3: 0.925, 4: 0.899, 5: 0.916}
    assert stats.paired_p_value(best, noisy) > 0.3
    # A simulation with no true difference rejects at about the 5% level.
    rng = np.random.default_rng(0)
    rejections = 0
    for _ in range(2000):
        a = dict(enumerate(rng.normal(0.9, 0.01, 3)))
        b = dict(enumerate(rng.normal(0.9, 0.01, 3)))
        rejections += stats.paired_p_value(a, b) < stats.ALPHA
    assert 0.03 < rejections / 2000 < 0.07
    assert stats.paired_p_value({1: 0.9}, {1: 0.8}) is None  # one shared seed: nothing to pair


def test_two_proportions_need_a_large_test_set_to_differ():
    assert stats.two_proportion_p_value(17 / 18, 18, 15 / 18, 18) > 0.05
    assert stats.two_proportion_p_value(0.944, 10_000, 0.833, 10_000) < 1e-6


def make_runs(client, experiment_id, results: dict[str, list[float]], test_size=10_000):
    for lr, accuracies in results.items():
        for seed, accuracy in enumerate(accuracies, start=1):
            run_id = client.create_run(experiment_id, run_name=f"lr={lr} seed={seed}").info.run_id
            params = {
                "seed": seed,
                "optimizer.lr": lr,
                "backbone.name": "compact_cnn",
                "data.test_size": test_size,
                "data.val_size": 6000,
                "mlflow.run_name": "x",
            }
            for key, value in params.items():
                client.log_param(run_id, key, value)
            client.log_metric(run_id, "test_accuracy", accuracy)
            client.log_metric(run_id, "best_val_accuracy", accuracy + 0.01)
            client.set_terminated(run_id, "FINISHED")


def test_configurations_aggregate_seeds_and_mark_which_match_the_best(store_uri):
    client = mlflow.MlflowClient(store_uri)
    experiment_id = store.init_store(store_uri, "t")
    make_runs(
        client,
        experiment_id,
        {
            "0.001": [0.900, 0.910, 0.920],
            "0.003": [0.905, 0.912, 0.919],
            "0.01": [0.800, 0.810, 0.830],
        },
    )
    table = summary.rows(client.search_runs([experiment_id]), "test_accuracy")
    groups = aggregate.configurations(table, "test_accuracy")
    assert [g["label"] for g in groups] == [
        "optimizer.lr=0.003",
        "optimizer.lr=0.001",
        "optimizer.lr=0.01",
    ]
    first = groups[0]["test_accuracy"]
    assert (first.n, round(first.mean, 4), round(first.std, 4)) == (3, 0.912, 0.007)
    assert (first.low, first.high) == (0.905, 0.919)
    assert [g["vs_best"] for g in groups] == ["best", "≈ best", "worse"]
    assert aggregate.champion(groups)["run"] == "lr=0.003 seed=3"
    text = aggregate.to_text(groups, "test_accuracy")
    assert "0.9120 ± 0.0070" in text and "worse" in text.splitlines()[-1]
    first_row = next(csv.DictReader(io.StringIO(aggregate.to_csv(groups))))
    assert first_row["configuration"] == "optimizer.lr=0.003" and first_row["n"] == "3"
    assert float(first_row["test_accuracy_mean"]) == pytest.approx(0.912)
    assert len(first_row["run_ids"].split()) == 3


def test_single_runs_are_compared_on_their_test_counts(store_uri):
    client = mlflow.MlflowClient(store_uri)
    experiment_id = store.init_store(store_uri, "t")
    make_runs(client, experiment_id, {"0.001": [17 / 18], "0.01": [15 / 18]}, test_size=18)
    table = summary.rows(client.search_runs([experiment_id]), "test_accuracy")
    groups = aggregate.configurations(table, "test_accuracy")
    assert [g["vs_best"] for g in groups] == ["best", "≈ best"]  # 18 images say little
    text = summary.to_text(table, "test_accuracy")
    assert "[0.7424, 0.9901]" in text  # 17 of 18, with its honest interval


@pytest.mark.slow
def test_a_seed_sweep_is_aggregated_and_its_winner_registered_then_served(
    workdir, store_uri, fashion_dir
):
    result = run_cli(
        "-m",
        "seed=1,2",
        "optimizer.lr=1e-3,3e-2",
        "backbone=custom_cnn",
        "dataset.limit=300",
        "trainer.epochs=1",
        "trainer.verbose=0",
        "mlflow.samples=0",
        "mlflow.register_as=fashion",
        f"mlflow.tracking_uri={store_uri}",
        cwd=workdir,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "2 configuration(s), runs that differ only in seed aggregated" in result.stdout
    lines = result.stdout.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("configuration"))
    rows = lines[header + 2 : header + 4]
    assert all(row.split()[1] == "2" for row in rows)  # n = 2 seeds each
    assert rows[0].split()[-1] == "best"
    client = mlflow.MlflowClient(store_uri)
    version = client.get_model_version_by_alias("fashion", "champion")
    parent = client.search_runs(
        [client.get_experiment_by_name("experiments").experiment_id],
        "tags.`experiments.kind` = 'sweep'",
    )[0]
    assert version.run_id == parent.data.tags["best_run_id"]
    assert parent.data.tags["registered_model"] == f"fashion/{version.version}"
    assert "models:/fashion@champion" in result.stdout

    # compare registers too: a second version, the alias moves to it.
    compared = in_process(
        compare.main,
        f"mlflow.tracking_uri={store_uri}",
        "register_as=fashion",
        "metric=test_accuracy",
        cwd=workdir,
    )
    assert compared.returncode == 0, compared.stderr[-2000:]
    assert int(client.get_model_version_by_alias("fashion", "champion").version) == 2

    # The champion serves predictions by its registry name.
    folder = workdir / "images"
    folder.mkdir()
    for i in range(3):
        Image.fromarray(np.full((28, 28), 40 * i, np.uint8)).save(folder / f"{i}.png")
    served = in_process(
        predict.main,
        "model=models:/fashion@champion",
        f"inputs={folder}",
        f"mlflow.tracking_uri={store_uri}",
        cwd=workdir,
    )
    assert served.returncode == 0, served.stderr[-2000:]
    assert all(f"{i}.png" in served.stdout for i in range(3))


def test_configurations_are_named_by_backbone_and_phase_first(store_uri):
    client = mlflow.MlflowClient(store_uri)
    experiment_id = store.init_store(store_uri, "t")
    for backbone, phase, dropout in (
        ("resnet50", "transfer", 0.2),
        ("resnet50", "finetune", 0.2),
        ("custom_cnn", "scratch", 0.0),
    ):
        run_id = client.create_run(experiment_id).info.run_id
        params = {
            "backbone.name": backbone,
            "phase.name": phase,
            "backbone.dropout": dropout,
            "dataset.channels": 3,
            "dataset.image_size": 72,
            "seed": 1,
        }
        for key, value in params.items():
            client.log_param(run_id, key, value)
        client.log_metric(run_id, "test_accuracy", 0.5)
        client.set_terminated(run_id, "FINISHED")
    table = summary.rows(client.search_runs([experiment_id]), "test_accuracy")
    labels = {g["label"] for g in aggregate.configurations(table, "test_accuracy")}
    assert labels == {
        "resnet50 transfer backbone.dropout=0.2",
        "resnet50 finetune backbone.dropout=0.2",
        "custom_cnn scratch backbone.dropout=0.0",
    }
