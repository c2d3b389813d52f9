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
from experiments.reporting import aggregate, labels, pareto, run_table, stats, summary
from experiments.tracking import predictions, store


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


def test_mcnemar_counts_only_the_images_where_two_runs_disagree():
    # 10 images only a got right, 2 only b, 88 both or neither: 2 * P(X <= 2 | 12, 1/2).
    a = [True] * 10 + [False] * 2 + [True] * 50 + [False] * 38
    b = [False] * 10 + [True] * 2 + [True] * 50 + [False] * 38
    assert stats.mcnemar_p_value(a, b) == pytest.approx(2 * (1 + 12 + 66) / 4096)
    # The images both got right or both got wrong change nothing.
    assert stats.mcnemar_p_value(a[:12], b[:12]) == pytest.approx(stats.mcnemar_p_value(a, b))
    assert stats.mcnemar_p_value(a, a) == 1.0
    # 17 of 18 against 15 of 18 on the same images: two disagreements say nothing.
    assert stats.mcnemar_p_value([True] * 17 + [False], [True] * 15 + [False] * 3) == 0.5


def test_holm_adjusts_the_comparisons_against_the_best_step_down():
    assert stats.holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert stats.holm([0.01, None, 0.5]) == [pytest.approx(0.02), None, pytest.approx(0.5)]
    assert stats.holm([0.9, 0.8]) == [1.0, 1.0] or stats.holm([0.9, 0.8]) == pytest.approx(
        [1.0, 1.0]
    )
    # A simulation with no true difference among 5 configurations: the chance of any false
    # "worse" stays under 5% once adjusted (it is about 23% unadjusted).
    rng = np.random.default_rng(0)
    any_raw = any_adjusted = 0
    for _ in range(2000):
        ps = list(rng.uniform(size=5))
        any_raw += min(ps) < stats.ALPHA
        any_adjusted += min(stats.holm(ps)) < stats.ALPHA
    assert any_raw / 2000 > 0.18 and any_adjusted / 2000 <= 0.06


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
    table = run_table.rows(client.search_runs([experiment_id]), "test_accuracy")
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
    assert "0.9120 ± 0.0070" in text
    assert next(
        line for line in text.splitlines() if line.startswith("optimizer.lr=0.01 ")
    ).endswith("worse")
    assert "paired t-test over shared seeds; Holm-adjusted over 2 comparison(s)" in text
    first_row = next(csv.DictReader(io.StringIO(aggregate.to_csv(groups))))
    assert first_row["configuration"] == "optimizer.lr=0.003" and first_row["n"] == "3"
    assert float(first_row["test_accuracy_mean"]) == pytest.approx(0.912)
    assert len(first_row["run_ids"].split()) == 3


def save_predictions(client, run_id: str, correct: list[bool], tmp_path, digest="d1"):
    """Per-image predictions of a 2-class run: right where ``correct`` says."""
    labels = np.arange(len(correct)) % 2
    predicted = np.where(correct, labels, 1 - labels)
    probs = np.eye(2, dtype=np.float32)[predicted] * 0.8 + 0.1
    path = tmp_path / run_id / "test.npz"
    path.parent.mkdir()
    predictions.write(path, predictions.arrays(labels, probs, digest))
    client.log_artifact(run_id, str(path), predictions.FOLDER)


def test_single_runs_are_tested_image_by_image_and_adjusted_for_multiplicity(store_uri, tmp_path):
    client = mlflow.MlflowClient(store_uri)
    experiment_id = store.init_store(store_uri, "t")
    accuracy = {"0.001": 0.9, "0.002": 0.88, "0.01": 0.6, "0.03": 0.55}
    make_runs(client, experiment_id, {lr: [a] for lr, a in accuracy.items()}, test_size=100)
    for run in client.search_runs([experiment_id]):
        lr = run.data.params["optimizer.lr"]
        right = round(accuracy[lr] * 100)
        if lr != "0.03":  # a run from before predictions were saved
            save_predictions(client, run.info.run_id, [i < right for i in range(100)], tmp_path)
    sets = summary.report(client, client.search_runs([experiment_id]), "test_accuracy")
    assert len(sets) == 1
    groups = sets[0].groups
    assert [g["label"] for g in groups] == [
        "optimizer.lr=0.001",
        "optimizer.lr=0.002",
        "optimizer.lr=0.01",
        "optimizer.lr=0.03",
    ]
    # 0.88 vs 0.90 on the same 100 images: 2 disagreements, indistinguishable.
    assert groups[1]["p_raw"] == pytest.approx(0.5) and groups[1]["vs_best"] == "≈ best"
    assert groups[1]["method"] == aggregate.MCNEMAR
    # 30 disagreements, all one way: worse, even after Holm's factor of 2.
    assert groups[2]["p_value"] == pytest.approx(2 * groups[2]["p_raw"])
    assert groups[2]["vs_best"] == "worse"
    # No saved predictions: not tested, and the table says why instead of guessing.
    assert groups[3]["vs_best"] == "?" and "no saved predictions" in groups[3]["method"]
    text = summary.text(sets, "test_accuracy")
    assert "McNemar's exact test on the images; Holm-adjusted over 2 comparison(s)" in text
    assert "?: optimizer.lr=0.03: not tested (no saved predictions" in text
    assert "[0.8256, 0.9448]" in text  # 90 of 100, with its honest interval
    # A trial its search pruned saved no predictions by design: said so, not "from before".
    [lr_03] = [
        r for r in client.search_runs([experiment_id]) if r.data.params["optimizer.lr"] == "0.03"
    ]
    client.set_tag(lr_03.info.run_id, "optuna.state", "PRUNED")
    sets = summary.report(client, client.search_runs([experiment_id]), "test_accuracy")
    assert "pruned by its search" in sets[0].groups[3]["method"]


def test_runs_on_different_evaluation_sets_are_never_ranked_together(store_uri):
    client = mlflow.MlflowClient(store_uri)
    experiment_id = store.init_store(store_uri, "t")
    make_runs(client, experiment_id, {"0.001": [0.93]}, test_size=10_000)
    make_runs(client, experiment_id, {"0.01": [1.0], "0.02": [0.75]}, test_size=4)
    sets = summary.report(client, client.search_runs([experiment_id]), "test_accuracy")
    assert [len(s.rows) for s in sets] == [2, 1]
    assert all(len({r["evaluation"] for r in s.rows}) == 1 for s in sets)
    text = summary.text(sets, "test_accuracy")
    assert text.splitlines()[0].startswith("These runs were scored on 2 different evaluation sets")
    assert "4 test / 6,000 validation images" in text and "10,000 test" in text
    # 4 images: the table says how few, and ranks by the interval.
    assert "Only 4 test images" in text and "ranks by the low end of the 95% CI" in text
    assert sets[0].groups[1]["vs_best"] == "?"
    problems = summary.register_best(client, {}, sets, "test_accuracy", "m")
    assert "2 evaluation sets" in problems[0] and "filter=" in problems[0]


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
        "cost=quick",
        "interpretation=off",
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
    table = run_table.rows(client.search_runs([experiment_id]), "test_accuracy")
    labels = {g["label"] for g in aggregate.configurations(table, "test_accuracy")}
    assert labels == {
        "resnet50 transfer backbone.dropout=0.2",
        "resnet50 finetune backbone.dropout=0.2",
        "custom_cnn scratch backbone.dropout=0.0",
    }


def test_labels_hold_every_differing_key_and_a_legend_gives_the_overrides():
    keys = [f"k{i}" for i in range(8)]
    first = tuple((k, "1") for k in keys)
    second = tuple((k, "2") for k in keys)
    named = labels.labels([first, second])
    assert named[first] == " ".join(f"{k}=1" for k in keys)  # never cut with "..."
    assert "..." not in named[second]
    group = {
        "label": named[first],
        "runs": [{"overrides": "k0=1 seed=3"}, {"overrides": "k0=1 seed=4"}],
    }
    assert labels.legend([group]).splitlines()[1] == f"  {named[first]}: k0=1"


def test_pareto_front_keeps_the_configurations_nothing_beats_on_both():
    # (accuracy, latency): c is slower and less accurate than a; d ties a on both.
    points = [(0.90, 10.0), (0.95, 40.0), (0.85, 20.0), (0.90, 10.0), None, (0.80, 1.0)]
    assert pareto.front(points) == [True, True, False, True, False, True]
    # The same network timed twice, 5% apart, is not a faster option: the noise is a tie.
    assert pareto.front([(0.82, 0.70), (0.81, 0.665)]) == [True, False]
    assert pareto.front([(0.82, 0.70), (0.81, 0.50)]) == [True, True]
