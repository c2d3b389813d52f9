"""compare: the side-by-side table agrees with what MLflow holds for each run."""

from __future__ import annotations

import csv

import mlflow
import pytest
from helpers import in_process, run_cli

from experiments.commands import compare
from experiments.training import train
from experiments.training.settings import compose

QUICK = [
    "dataset=shapes",  # small: what is compared does not depend on the data
    "dataset.image_size=32",
    "dataset.per_class=8",
    "trainer.epochs=1",
    "trainer.verbose=0",
    "cost=quick",
    "interpretation=off",
    "mlflow.samples=0",
    "mlflow.log_model=false",
    "trainer.checkpoints=false",
]


@pytest.fixture(scope="module")
def three_store(tmp_path_factory):
    """One store with three finished runs, shared by this module's tests (they only read it)."""
    folder = tmp_path_factory.mktemp("compare")
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(folder)  # the checkpoints and the image cache go there too
        for lr, optimizer in (("1e-3", "adam"), ("1e-2", "sgd"), ("1e-3", "rmsprop")):
            overrides = [*QUICK, f"optimizer={optimizer}", f"optimizer.lr={lr}"]
            train.run(compose([*overrides, f"mlflow.tracking_uri={uri}"]))
    return uri


@pytest.fixture
def three_runs(three_store, workdir):
    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(three_store)
    yield [
        r
        for r in mlflow.search_runs(experiment_names=["experiments"], output_format="list")
        if "experiments.kind" not in r.data.tags
    ]
    mlflow.set_tracking_uri(previous)


@pytest.mark.slow
def test_table_rows_match_mlflow(workdir, three_store, three_runs):
    result = run_cli(
        f"mlflow.tracking_uri={three_store}", cwd=workdir, module="experiments.compare"
    )
    assert result.returncode == 0, result.stderr[-2000:]
    lines = result.stdout.splitlines()
    # One evaluation set: shapes at 8 images per class, split 3 ways.
    assert lines[0].startswith("Evaluation set: shapes: 4 classes, ")
    assert lines[1] == "3 runs, best first by val_accuracy:"
    assert lines[2].split()[:4] == ["run", "(id)", "status", "backbone"]

    with open(workdir / "comparison" / "comparison.csv") as handle:
        table = list(csv.DictReader(handle))
    by_id = {run.info.run_id: run for run in three_runs}
    assert {row["run_id"] for row in table} == set(by_id)
    best = [float(row["best_val_accuracy"]) for row in table]
    assert best == sorted(best, reverse=True)
    for row, text_line in zip(table, lines[4:7], strict=True):
        run = by_id[row["run_id"]]
        assert row["run"] == run.info.run_name and text_line.startswith(run.info.run_name)
        assert row["optimizer"] == run.data.params["optimizer.name"]
        assert row["lr"] == run.data.params["optimizer.lr"]
        assert float(row["test_accuracy"]) == run.data.metrics["test_accuracy"]
        assert float(row["test_loss"]) == run.data.metrics["test_loss"]
        # compact_cnn on 32x32 RGB: 173,476 trainable weights
        assert float(row["trainable_params"]) == run.data.metrics["trainable_params"] == 173476
        assert f"{run.data.metrics['test_accuracy']:.4f}" in text_line
        assert f"({row['run_id'][:8]})" in text_line  # names repeat; the id tells them apart
        # What the model costs, measured once per run, and where.
        for cost in ("latency_ms", "size_mb", "macs", "throughput_ips", "test_ece"):
            assert (
                float(row[cost]) == pytest.approx(run.data.metrics[cost]) and float(row[cost]) > 0
            )
        assert (
            float(row["latency_ms_q1"]) <= float(row["latency_ms"]) <= float(row["latency_ms_q3"])
        )
        assert run.data.tags["cost.threads"] == run.data.params["runtime.threads"]
        assert run.data.tags["cost.precision"] == run.data.params["runtime.precision"]
        assert row["cpu"] == run.data.tags["cost.cpu"] and row["cpu"]
    assert "legend (label: the overrides its runs were started with):" in result.stdout
    assert "front" in result.stdout and "Holm-adjusted over 2 comparison(s)" in result.stdout
    for name in ("comparison.md", "test_accuracy.png", "val_accuracy_curves.png", "pareto.png"):
        assert (workdir / "comparison" / name).stat().st_size > 0

    comparison = mlflow.search_runs(
        experiment_names=["experiments"],
        filter_string="tags.`experiments.kind` = 'comparison'",
        output_format="list",
    )
    assert len(comparison) == 1 and comparison[0].data.tags["best_run_id"] == table[0]["run_id"]
    # A second compare ignores the comparison run it logged the first time.
    again = in_process(compare.main, f"mlflow.tracking_uri={three_store}", cwd=workdir)
    assert again.stdout.splitlines()[1] == "3 runs, best first by val_accuracy:"


@pytest.mark.slow  # its module fixture trains three runs (11 s of the fast tier)
def test_filter_and_metric(workdir, three_store, three_runs):
    result = in_process(
        compare.main,
        f"mlflow.tracking_uri={three_store}",
        "filter=params.`optimizer.name` != 'sgd'",
        "metric=test_loss",
        "log=false",
        cwd=workdir,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.splitlines()[1] == "2 runs, best first by test_loss:"
    losses = sorted(
        r.data.metrics["test_loss"] for r in three_runs if r.data.params["optimizer.name"] != "sgd"
    )
    assert f"{losses[0]:.4f}" in result.stdout.splitlines()[4]


@pytest.mark.slow
def test_bad_selection_is_one_line(workdir, three_store, three_runs):
    for args, fragment in (
        (["mlflow.experiment_name=nope"], "mlflow.experiment_name=nope"),
        (["filter=params.x = "], "filter"),
        (["parent=0123456789abcdef0123456789abcdef"], "parent"),
        (["colour=red"], "colour"),
    ):
        result = in_process(compare.main, f"mlflow.tracking_uri={three_store}", *args, cwd=workdir)
        assert result.returncode == 2, (args, result.stderr[-1000:])
        assert result.stderr.strip().splitlines()[-1].startswith("error: ")
        assert fragment in result.stderr
