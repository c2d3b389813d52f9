"""Sweeps: one MLflow parent per sweep, every job a child, a summary on the parent."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
import time

import mlflow
import pytest
from helpers import in_process, run_cli, user_environment

from experiments import cpus
from experiments.commands import compare
from experiments.tracking.sweeps import PARENT_FILE

QUICK = [
    "dataset.limit=200",
    "trainer.epochs=1",
    "trainer.verbose=0",
    "cost=quick",
    "interpretation=off",
    "mlflow.samples=2",
    "mlflow.log_model=false",
]


def failure_report(result, workdir) -> str:
    """The sweep's output and its jobs' logs, to tell why a sweep failed."""
    patterns = (
        "multirun/*/*/.failed_jobs/*.json",
        "multirun/*/*/*/*.log",
        "multirun/*/*/.submitit/*/*.err",
    )
    logs = "\n".join(
        f"--- {path}\n{path.read_text()[-3000:]}"
        for pattern in patterns
        for path in sorted(workdir.glob(pattern))
    )
    return f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}\n{logs}"


def tree(uri: str):
    client = mlflow.MlflowClient(uri)
    runs = client.search_runs([client.get_experiment_by_name("experiments").experiment_id])
    parents = [r for r in runs if r.data.tags.get("experiments.kind") == "sweep"]
    children = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
    return client, parents, children


@pytest.mark.slow
def test_four_parallel_jobs_on_a_fresh_store_lose_no_run_and_no_metric(
    workdir, fresh_store_uri, fashion_dir
):
    store_uri = fresh_store_uri
    result = run_cli(
        "-m",
        "hydra/launcher=joblib",
        "hydra.launcher.n_jobs=4",
        "seed=1,2,3,4",
        "dataset.limit=200",
        "trainer.epochs=3",
        "trainer.verbose=0",
        "cost=quick",
        "interpretation=off",
        "mlflow.samples=2",
        "mlflow.log_model=false",
        f"mlflow.tracking_uri={store_uri}",
        cwd=workdir,
    )
    assert result.returncode == 0, failure_report(result, workdir)
    client, parents, children = tree(store_uri)
    assert len(parents) == 1 and len(children) == 4
    assert {c.info.status for c in children} == {"FINISHED"}
    assert sorted(c.data.params["seed"] for c in children) == ["1", "2", "3", "4"]
    assert {c.data.params["runtime.threads"] for c in children} == {"1"}  # 2 cores, 4 jobs
    for child in children:
        for key in ("loss", "accuracy", "val_loss", "val_accuracy"):
            steps = [m.step for m in client.get_metric_history(child.info.run_id, key)]
            assert sorted(steps) == [0, 1, 2], (child.info.run_id, key, steps)
        assert {"test_accuracy", "best_val_accuracy"} <= set(child.data.metrics)
    db = sqlite3.connect(store_uri.removeprefix("sqlite:///"))
    assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)


@pytest.mark.parametrize(
    "launcher",
    [[], ["hydra/launcher=submitit_local"]],  # joblib: the four-job test below
    ids=["basic", "submitit_local"],
)
@pytest.mark.slow
def test_two_job_sweep_is_one_parent_with_two_finished_children(
    workdir, fresh_store_uri, fashion_dir, launcher
):
    store_uri = fresh_store_uri
    # A fresh store: the callback creates it once, before the (parallel) jobs open it.
    result = run_cli(
        "-m",
        *launcher,
        "optimizer.lr=1e-3,1e-4",
        *QUICK,
        f"mlflow.tracking_uri={store_uri}",
        cwd=workdir,
    )
    assert result.returncode == 0, failure_report(result, workdir)
    client, parents, children = tree(store_uri)
    assert len(parents) == 1 and len(children) == 2
    parent = parents[0]
    assert parent.info.status == "FINISHED"
    assert {c.data.tags["mlflow.parentRunId"] for c in children} == {parent.info.run_id}
    assert {c.info.status for c in children} == {"FINISHED"}
    assert {c.data.params["optimizer.lr"] for c in children} == {"0.001", "0.0001"}
    # Two jobs at once share the cores; one job at a time gets them all.
    cores = cpus.usable()
    expected = str(max(1, cores // 2) if launcher else cores)
    assert {c.data.params["runtime.threads"] for c in children} == {expected}

    best = max(children, key=lambda c: c.data.metrics["best_val_accuracy"])
    assert parent.data.tags["best_run_id"] == best.info.run_id
    best_value = best.data.metrics["best_val_accuracy"]
    assert float(parent.data.tags["best_val_accuracy"]) == pytest.approx(best_value, abs=1e-6)
    # Bookkeeping is tags, not metrics (they would fill the UI's charts); user and source too.
    assert parent.data.tags["runs"] == "2" and parent.data.tags["failed_runs"] == "0"
    assert parent.data.metrics == {}
    assert parent.data.tags["mlflow.user"] == children[0].data.tags["mlflow.user"]
    assert parent.data.tags["mlflow.source.name"]
    # Each child's name leads with what the sweep varies: distinct in what the UI shows.
    names = sorted(c.info.run_name for c in children)
    assert names == [
        "lr=0.0001 · compact_cnn-scratch-adam-lr0.0001",
        "lr=0.001 · compact_cnn-scratch-adam-lr0.001",
    ]
    assert len({name[:20] for name in names}) == 2
    files = {a.path for a in client.list_artifacts(parent.info.run_id, "summary")}
    assert {"summary/comparison.csv", "summary/comparison.md", "summary/test_accuracy.png"} <= files
    csv_text = mlflow.artifacts.load_text(f"runs:/{parent.info.run_id}/summary/comparison.csv")
    assert csv_text.count("\n") == 3 and "optimizer.lr=0.0001" in csv_text
    assert "2 runs, best first by val_accuracy" in result.stdout

    compared = in_process(  # compare's own command line: test_compare.py
        compare.main,
        f"mlflow.tracking_uri={store_uri}",
        f"parent={parent.info.run_id}",
        "metric=test_loss",
        cwd=workdir,
    )
    assert compared.returncode == 0, compared.stderr[-2000:]
    assert compared.stdout.splitlines()[1] == "2 runs, best first by test_loss:"
    # The comparison is a run of its own under the sweep; the parent's summary is untouched.
    after = client.get_run(parent.info.run_id)
    assert after.data.tags["best_run_id"] == parent.data.tags["best_run_id"]
    comparisons = client.search_runs(
        [parent.info.experiment_id], "tags.`experiments.kind` = 'comparison'"
    )
    assert [c.data.tags["mlflow.parentRunId"] for c in comparisons] == [parent.info.run_id]
    assert comparisons[0].info.status == "FINISHED"


@pytest.mark.slow
def test_a_failed_job_does_not_stop_the_sweep_nor_its_summary(workdir, store_uri, fashion_dir):
    result = run_cli(
        "-m", "dataset.root=nowhere,null", *QUICK, f"mlflow.tracking_uri={store_uri}", cwd=workdir
    )
    assert result.returncode == 1
    assert "dataset.root=nowhere" in result.stdout and "failed" in result.stdout
    client, parents, children = tree(store_uri)
    assert parents[0].info.status == "FINISHED"
    assert [c.info.status for c in children] == ["FINISHED"]
    failed = mlflow.artifacts.load_text(f"runs:/{parents[0].info.run_id}/summary/failed_jobs.txt")
    assert "dataset.root=nowhere" in failed


@pytest.mark.slow
def test_an_interrupted_sweep_leaves_no_run_running_and_resume_trains_only_the_rest(
    workdir, store_uri, fashion_dir
):
    """SIGTERM during the second job: nothing stays RUNNING. The same command with
    trainer.resume=sweep then continues that sweep: the FINISHED job is not trained again,
    the KILLED one resumes from its checkpoint, and the one parent ends FINISHED."""
    sweep = [
        "-m",
        "trainer.epochs=2,10",  # the first job short: it only has to finish
        "dataset.limit=2000",
        "trainer.verbose=0",
        "cost=quick",
        "interpretation=off",
        "mlflow.samples=0",
        "mlflow.log_model=false",
        f"mlflow.tracking_uri={store_uri}",
    ]
    process = subprocess.Popen(
        [sys.executable, "-m", "experiments", *sweep],
        cwd=workdir,
        env=user_environment(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    client = mlflow.MlflowClient(store_uri)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and process.poll() is None:
        try:
            _, parents, children = tree(store_uri)
        except Exception:  # the store is being created
            children = []
        second = [c for c in children if c.data.params.get("trainer.epochs") == "10"]
        if second and client.get_metric_history(second[0].info.run_id, "val_accuracy"):
            break
        time.sleep(0.5)
    else:
        pytest.fail("the second job never logged an epoch")
    process.send_signal(signal.SIGTERM)
    process.communicate(timeout=60)
    assert process.returncode != 0
    _, parents, children = tree(store_uri)
    assert [p.info.status for p in parents] == ["KILLED"]
    by_epochs = {c.data.params["trainer.epochs"]: c for c in children}
    assert by_epochs["2"].info.status == "FINISHED" and by_epochs["10"].info.status == "KILLED"
    killed = by_epochs["10"].info.run_id
    assert client.get_metric_history(killed, "val_accuracy")  # kept
    finished = client.get_metric_history(by_epochs["2"].info.run_id, "epoch_time_s")

    result = run_cli(*sweep, "trainer.resume=sweep", cwd=workdir)
    assert result.returncode == 0, result.stderr[-3000:]
    _, parents_after, children_after = tree(store_uri)
    [parent] = parents_after
    assert parent.info.run_id == parents[0].info.run_id and parent.info.status == "FINISHED"
    assert parent.data.tags["resumed_sweeps"] == "1" and "failure_reason" not in parent.data.tags
    assert len(children_after) == 2  # no configuration trained into a run of its own
    after = {c.data.params["trainer.epochs"]: c for c in children_after}
    assert {c.info.run_id for c in after.values()} == {c.info.run_id for c in children}
    assert {c.info.status for c in after.values()} == {"FINISHED"}
    assert "FINISHED already" in result.stdout + result.stderr
    again = client.get_metric_history(after["2"].info.run_id, "epoch_time_s")
    assert len(again) == len(finished) == 2  # not trained again
    assert 0 < int(after["10"].data.tags["resumed_at_step"]) < 10  # from its checkpoint
    steps = sorted(m.step for m in client.get_metric_history(killed, "val_accuracy"))
    assert steps == list(range(10))


@pytest.mark.slow
def test_sweeps_started_together_stay_separate_sweeps(workdir, store_uri, fashion_dir):
    """Two sweeps in the same folder at once, as two started in the same second get."""
    folder = workdir / "multirun" / "same-second"
    processes = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "experiments",
                "-m",
                f"seed={seed}",
                *QUICK,
                "cost.measure=false",
                f"hydra.sweep.dir={folder}",
                f"mlflow.tracking_uri={store_uri}",
            ],
            cwd=workdir,
            env=user_environment(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for seed in (1, 2)
    ]
    outputs = [process.communicate(timeout=300) for process in processes]
    for process, (stdout, stderr) in zip(processes, outputs, strict=True):
        assert process.returncode == 0, stdout[-2000:] + stderr[-3000:]
        assert "1 run, best first by val_accuracy" in stdout  # its own summary, not pooled
    client, parents, children = tree(store_uri)
    assert len(parents) == 2 and len(children) == 2
    assert {p.info.status for p in parents} == {"FINISHED"}
    by_parent = {c.data.tags["mlflow.parentRunId"]: c.data.params["seed"] for c in children}
    for parent in parents:  # each parent has its own child: the seed of its own command
        assert f"seed={by_parent[parent.info.run_id]}" in parent.data.tags["hydra.overrides"]
    said = [out + err for out, err in outputs if "belongs to another sweep still" in out + err]
    assert len(said) == 1 and f"this sweep writes to {folder}-2" in said[0]
    second = folder.with_name("same-second-2")
    ids = {json.loads((f / PARENT_FILE).read_text())["run_id"] for f in (folder, second)}
    assert ids == {p.info.run_id for p in parents}


def test_eight_sweeps_claiming_one_folder_each_get_their_own(tmp_path):
    """The claim alone (no training): eight processes at once, all holding until released."""
    folder, release = tmp_path / "multirun" / "12-00-00", tmp_path / "release"
    claim = (
        "import sys, time\n"
        "from pathlib import Path\n"
        "from experiments.tracking import sweep_folder\n"
        "print(sweep_folder.claim(Path(sys.argv[1]))[0], flush=True)\n"
        "while not Path(sys.argv[2]).exists(): time.sleep(0.05)\n"
    )
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", claim, str(folder), str(release)],
            env=user_environment(),
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(8)
    ]
    try:
        claimed = [process.stdout.readline().strip() for process in processes]
    finally:
        release.touch()
        for process in processes:
            process.communicate(timeout=30)
    names = {str(folder), *(f"{folder}-{n}" for n in range(2, 9))}
    assert sorted(claimed) == sorted(names)
    # Once they have ended, the folder is free again: a later sweep reuses it.
    from experiments.tracking import sweep_folder

    assert sweep_folder.claim(folder) == (folder, None)


def test_summary_keeps_a_failed_child_and_ranks_it_last(workdir, store_uri):
    from experiments.reporting import run_table

    client = mlflow.MlflowClient(store_uri)
    experiment = client.create_experiment("t")
    for name, status, accuracy in (
        ("good", "FINISHED", 0.8),
        ("better", "FINISHED", 0.9),
        ("broken", "FAILED", None),
    ):
        run = client.create_run(experiment, run_name=name, tags={"backbone": "vgg16"})
        if accuracy is not None:
            client.log_metric(run.info.run_id, "best_val_accuracy", accuracy)
            client.log_metric(run.info.run_id, "test_accuracy", accuracy - 0.05)
            client.log_metric(run.info.run_id, "test_loss", 1 - accuracy)
        client.set_terminated(run.info.run_id, status)
    table = run_table.rows(client.search_runs([experiment]), "val_accuracy")
    assert [(r["run"], r["status"]) for r in table] == [
        ("better", "FINISHED"),
        ("good", "FINISHED"),
        ("broken", "FAILED"),
    ]
    text = run_table.to_text(table, "val_accuracy")
    assert "broken" in text.splitlines()[-1] and "FAILED" in text.splitlines()[-1]
    assert run_table.rows(client.search_runs([experiment]), "test_loss")[-1]["run"] == "broken"


@pytest.mark.slow
def test_optuna_search_prunes_survives_a_diverging_trial_and_can_be_continued(
    workdir, store_uri, fashion_dir
):
    """lr=1e9 diverges (NaN loss); a pruner that stops every trial after its first epoch.

    Every trial still runs; the pruned ones end FINISHED with that epoch's metrics, and the
    study is an Optuna database that optuna.load_study reads by its URL.
    """
    storage = f"sqlite:///{workdir / 'optuna.db'}"
    search = [
        "-m",
        "hparams_search=optuna",
        "hydra.sweeper.n_trials=3",
        "hydra.sweeper.pruner={_target_:optuna.pruners.ThresholdPruner,lower:0.99}",
        "optimizer.lr=choice(1e9,1e-3)",
        "dataset.limit=300",
        "trainer.epochs=2",
        "backbone=custom_cnn",
        "trainer.verbose=0",
        "cost=quick",
        "interpretation=off",
        "mlflow.samples=0",
        "mlflow.log_model=false",
        f"hydra.sweeper.storage={storage}",
        f"mlflow.tracking_uri={store_uri}",
    ]
    result = run_cli(*search, cwd=workdir)
    assert result.returncode == 1, failure_report(result, workdir)  # a trial failed: said so
    client, parents, children = tree(store_uri)
    assert len(children) == 3
    statuses = sorted(c.info.status for c in children)
    assert "FAILED" in statuses and "FINISHED" in statuses
    parent = parents[0]
    assert parent.info.status == "FINISHED"  # with its summary
    assert parent.data.tags["failed_runs"] == str(statuses.count("FAILED"))
    best = client.get_run(parent.data.tags["best_run_id"])
    assert best.info.status == "FINISHED"
    assert "failed" in result.stdout and "NaN" in result.stdout
    # Pruned after one epoch of two: FINISHED, tagged, its one epoch's metrics kept.
    pruned = [c for c in children if c.info.status == "FINISHED"]
    for child in pruned:
        assert child.data.tags["optuna.state"] == "PRUNED"
        assert len(client.get_metric_history(child.info.run_id, "val_accuracy")) == 1
        # Abandoned by its search: not tested, not measured, no model, its curves kept.
        assert "test_accuracy" not in child.data.metrics and "train_time_s" in child.data.metrics
        artifacts = {a.path for a in client.list_artifacts(child.info.run_id, "plots")}
        assert artifacts == {"plots/learning_curves.png"}
    assert parent.data.tags["trials.pruned"] == str(len(pruned))
    assert parent.data.tags["trials.failed"] == str(statuses.count("FAILED"))
    # The parent names the best trial's value and parameters; the sampled values lead names.
    values = [c.data.metrics["best_val_accuracy"] for c in pruned]
    assert float(parent.data.tags["best_val_accuracy"]) == pytest.approx(max(values), abs=1e-6)
    assert parent.data.params["best.optimizer.lr"] == best.data.params["optimizer.lr"]
    assert parent.data.params["best.trainer.batch_size"] == best.data.params["trainer.batch_size"]
    assert all(c.info.run_name.startswith("lr=") for c in children)
    # The batch size the command line left alone is sampled from the preset's choices.
    assert all(c.data.params["trainer.batch_size"] in ("32", "64", "128") for c in children)

    import optuna

    study = optuna.load_study(study_name="lr_batch_dropout", storage=storage)
    by_run = {c.data.tags.get("optuna.trial"): c for c in children}
    for trial in study.trials:  # every trial: its parameters, value and state
        run = by_run[str(trial.number)]
        assert trial.params["optimizer.lr"] == float(run.data.params["optimizer.lr"])
        assert trial.params["trainer.batch_size"] == int(run.data.params["trainer.batch_size"])
        assert trial.state.name == ("PRUNED" if run.info.status == "FINISHED" else "FAIL")
        if trial.state.name == "PRUNED":
            assert trial.value == pytest.approx(run.data.metrics["val_accuracy"], abs=1e-6)
    # The same storage continues the search: one more trial, four in all.
    again = run_cli(
        *[a for a in search if "n_trials" not in a], "hydra.sweeper.n_trials=1", cwd=workdir
    )
    assert again.returncode in (0, 1), failure_report(again, workdir)
    assert len(optuna.load_study(study_name="lr_batch_dropout", storage=storage).trials) == 4


def composed_with_hydra(overrides: list[str]):
    """The whole configuration, Hydra's part included, as a sweep starts with it."""
    from hydra import compose, initialize_config_dir

    from experiments.training import settings  # registers the schema

    with initialize_config_dir(config_dir=str(settings.schema.CONF_DIR), version_base="1.3"):
        return compose("config", overrides, return_hydra_config=True)


def test_optuna_preset_searches_the_learning_rate_and_batch_size_it_says():
    """The preset's ranges (the search above overrides the learning rate's)."""
    params = composed_with_hydra(["hparams_search=optuna"]).hydra.sweeper.params
    assert params["optimizer.lr"] == "tag(log, interval(1e-5, 1e-2))"
    assert params["trainer.batch_size"] == "choice(32, 64, 128)"


def test_optuna_direction_follows_the_metric():
    for metric, direction in (
        ("val_accuracy", "maximize"),
        ("val_loss", "minimize"),
        ("test_loss", "minimize"),
    ):
        cfg = composed_with_hydra(["hparams_search=optuna", f"metric={metric}"])
        assert cfg.hydra.sweeper.direction == direction


def test_resume_sweep_outside_a_sweep_is_one_error_naming_the_fix(store_uri):
    from experiments.errors import ConfigError
    from experiments.training import sweep_resume
    from experiments.training.settings import compose

    cfg = compose(["trainer.resume=sweep", f"mlflow.tracking_uri={store_uri}"])
    with pytest.raises(ConfigError, match=r"with -m and trainer.resume=sweep"):
        sweep_resume.plan(cfg, store_uri)
