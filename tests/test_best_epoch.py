"""The best epoch: restored before the test and the logged model, early stopping, resume."""

from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
import time
from types import SimpleNamespace

import mlflow
import numpy as np
import pytest
from helpers import app_main, in_process, resume_cli, user_environment

from experiments.reporting import reports
from experiments.tracking import store
from experiments.training import best_epoch, resume

TINY = ["trainer.verbose=0", "cost=quick", "interpretation=off", "mlflow.samples=0"]


def trainer(patience=None, min_delta=0.0):
    return SimpleNamespace(early_stopping=SimpleNamespace(patience=patience, min_delta=min_delta))


def fake_epochs(callback, model, values, first_epoch=0):
    """Feed ``values`` of val_accuracy as epochs, moving the weights to the epoch's index."""
    callback.set_model(model)
    for epoch, value in enumerate(values, start=first_epoch):
        model.weights[0].assign(np.full(model.weights[0].shape, float(epoch), "float32"))
        callback.on_epoch_end(epoch, {"val_accuracy": value})
        if model.stop_training:
            return epoch
    return None


@pytest.fixture
def model():
    import keras

    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    model.stop_training = False
    return model


def test_restore_puts_back_the_best_epoch_across_stages(model, tmp_path):
    tracker = best_epoch.Tracker("val_accuracy")
    warmup = best_epoch.callback(tracker, model, "warmup", 0, trainer(), tmp_path)
    fake_epochs(warmup, model, [0.5, 0.8])
    finetune = best_epoch.callback(tracker, model, "finetune", 2, trainer(), tmp_path)
    fake_epochs(finetune, model, [0.7, 0.9, 0.6], first_epoch=0)
    assert (tracker.step, tracker.stage, tracker.value) == (3, "finetune", 0.9)
    assert model.weights[0].numpy()[0, 0] == 2.0  # the last epoch's weights
    assert best_epoch.restore(model, tracker, last_step=4, folder=tmp_path)
    assert model.weights[0].numpy()[0, 0] == 1.0  # epoch 1 of the finetune stage (step 3)
    assert json.loads((tmp_path / best_epoch.BEST_STATE).read_text())["step"] == 3


def test_a_tie_goes_to_the_epoch_with_the_better_other_validation_metric(model, tmp_path):
    """Two epochs at 0.643 val_accuracy on 500 images: the one at val_loss 1.28 is the better
    model, not the earlier one at 1.73 (seen in a real run before ties were broken)."""
    tracker = best_epoch.Tracker("val_accuracy")
    callback = best_epoch.callback(tracker, model, "scratch", 0, trainer(), tmp_path)
    callback.set_model(model)
    for epoch, (accuracy, loss) in enumerate([(0.643, 1.73), (0.643, 1.28), (0.643, 1.40)]):
        model.weights[0].assign(np.full(model.weights[0].shape, float(epoch), "float32"))
        callback.on_epoch_end(epoch, {"val_accuracy": accuracy, "val_loss": loss})
    assert (tracker.step, tracker.value, tracker.tie) == (1, 0.643, 1.28)
    assert best_epoch.restore(model, tracker, last_step=2, folder=tmp_path)
    assert float(model.weights[0].numpy().flat[0]) == 1.0
    # Chosen by a loss, a tie goes to the higher accuracy.
    by_loss = best_epoch.Tracker("val_loss")
    callback = best_epoch.callback(by_loss, model, "scratch", 0, trainer(), None)
    callback.set_model(model)
    for epoch, (accuracy, loss) in enumerate([(0.60, 0.9), (0.70, 0.9), (0.65, 0.9)]):
        callback.on_epoch_end(epoch, {"val_accuracy": accuracy, "val_loss": loss})
    assert by_loss.step == 1 and by_loss.tie == 0.70
    # A state saved before ties were kept still resumes.
    old = {k: v for k, v in tracker.state().items() if k != "tie"}
    assert best_epoch.Tracker.from_state("val_accuracy", old).step == 1


def test_lower_is_better_for_losses_and_restore_from_the_file_after_a_resume(model, tmp_path):
    import keras

    tracker = best_epoch.Tracker("val_loss")
    callback = best_epoch.callback(tracker, model, "scratch", 0, trainer(), tmp_path)
    callback.set_model(model)
    for epoch, loss in enumerate([1.0, 0.4, 0.6]):
        model.weights[0].assign(np.full(model.weights[0].shape, float(epoch), "float32"))
        callback.on_epoch_end(epoch, {"val_loss": loss})
    assert tracker.step == 1
    # A resumed run has no copy in memory: the weights come from best.keras.
    again = best_epoch.resumed("val_loss", tmp_path, tracker.state())
    assert again.step == 1 and not again.snapshot
    fresh = keras.models.clone_model(model)
    assert best_epoch.restore(fresh, again, last_step=2, folder=tmp_path)
    assert fresh.weights[0].numpy()[0, 0] == 1.0


def test_a_best_file_from_an_epoch_to_be_trained_again_is_not_trusted(model, tmp_path):
    tracker = best_epoch.Tracker("val_accuracy")
    fake_epochs(
        best_epoch.callback(tracker, model, "scratch", 0, trainer(), tmp_path), model, [0.5, 0.6]
    )
    older = {**tracker.state(), "step": 0, "value": 0.5}  # last.json written before epoch 1
    assert best_epoch.resumed("val_accuracy", tmp_path, older).step is None


def test_early_stopping_counts_from_the_last_gain_and_gives_each_stage_its_patience(model):
    tracker = best_epoch.Tracker("val_accuracy")
    scratch = best_epoch.callback(tracker, model, "warmup", 0, trainer(2, 0.01), None)
    # 0.805 is a new best but not a gain of more than 0.01: it does not reset the count.
    assert fake_epochs(scratch, model, [0.7, 0.8, 0.805, 0.79, 0.9]) == 3
    assert (tracker.stopped_step, tracker.step) == (3, 2)
    model.stop_training = False
    finetune = best_epoch.callback(tracker, model, "finetune", 4, trainer(2, 0.01), None)
    assert fake_epochs(finetune, model, [0.5, 0.5, 0.5]) == 1  # two epochs of its own
    assert tracker.stopped_step == 5


def test_learning_curves_use_mlflow_steps_and_mark_the_fine_tuning(tmp_path):
    history = {
        "accuracy": [0.5, 0.6, 0.7, 0.8],
        "val_accuracy": [0.4, 0.5, 0.6, 0.7],
        "loss": [1, 0.8, 0.6, 0.5],
        "val_loss": [1.1, 0.9, 0.7, 0.6],
    }
    figure = reports.learning_curves(history, reports.stage_starts(["warmup@0", "finetune@2"]))
    accuracy = figure.axes[0]
    assert list(accuracy.lines[0].get_xdata()) == [0, 1, 2, 3]
    marks = [line for line in accuracy.lines if list(line.get_xdata()) == [1.5, 1.5]]
    assert len(marks) == 1
    assert any("finetune" in text.get_text() for text in accuracy.texts)


def test_resume_logs_the_epochs_a_kill_kept_from_the_store(store_uri):
    client = mlflow.MlflowClient(store_uri)
    experiment_id = store.init_store(store_uri, "t")
    run_id = client.create_run(experiment_id).info.run_id
    client.log_metric(run_id, "val_accuracy", 0.5, step=0)
    client.log_metric(run_id, "val_accuracy", 0.7, step=2)
    epochs = [{"val_accuracy": 0.5}, {"val_accuracy": 0.6}, {"val_accuracy": 0.7}]
    resume._send_missing(client, run_id, epochs)
    points = sorted((m.step, m.value) for m in client.get_metric_history(run_id, "val_accuracy"))
    assert points == [(0, 0.5), (1, 0.6), (2, 0.7)]


@pytest.mark.slow
def test_a_run_tests_and_logs_its_best_epoch(workdir, store_uri, fashion_dir):
    result = in_process(
        app_main,
        "backbone=custom_cnn",
        "dataset.limit=600",
        "trainer.epochs=4",
        "optimizer.lr=0.005",
        *TINY,
        f"mlflow.tracking_uri={store_uri}",
        cwd=workdir,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    client = mlflow.MlflowClient(store_uri)
    run = mlflow.search_runs(experiment_names=["experiments"], output_format="list")[0]
    history = [m.value for m in client.get_metric_history(run.info.run_id, "val_accuracy")]
    best = int(np.argmax(history))
    assert run.data.metrics["best_epoch"] == best
    assert run.data.tags["best_epoch_stage"] == "scratch"
    assert "stopped_epoch" not in run.data.metrics  # early stopping is off by default
    # The logged model is the best epoch's: it is linked to that step, and it is best.keras.
    model = mlflow.search_logged_models([run.info.experiment_id], output_format="list")[0]
    assert {m.step for m in model.metrics} == {best}
    folder = workdir / "checkpoints" / run.info.run_id
    assert json.loads((folder / best_epoch.BEST_STATE).read_text())["step"] == best
    import keras

    logged = mlflow.keras.load_model(f"models:/{model.model_id}")
    saved = keras.saving.load_model(folder / "best.keras")
    for a, b in zip(logged.weights, saved.weights, strict=True):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    # The test metrics are logged at the model's step, one value each.
    assert [m.step for m in client.get_metric_history(run.info.run_id, "test_accuracy")] == [best]


@pytest.mark.slow
def test_early_stopping_ends_the_run_and_logs_where(workdir, store_uri, fashion_dir):
    result = in_process(
        app_main,
        "backbone=custom_cnn",
        "dataset.limit=300",
        "trainer.epochs=6",
        "trainer.early_stopping.patience=1",
        "trainer.early_stopping.min_delta=1.0",
        *TINY,
        f"mlflow.tracking_uri={store_uri}",
        cwd=workdir,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    run = mlflow.search_runs(experiment_names=["experiments"], output_format="list")[0]
    client = mlflow.MlflowClient(store_uri)
    steps = [m.step for m in client.get_metric_history(run.info.run_id, "val_accuracy")]
    assert steps == [0, 1]  # no gain of 1.0 is possible: it stops after its patience
    assert run.data.metrics["stopped_epoch"] == 1
    assert run.data.params["trainer.early_stopping.patience"] == "1"


@pytest.mark.slow
def test_quick_sweep_reports_a_test_loss_that_matches_its_accuracy(workdir, store_uri, fashion_dir):
    """dataset.limit=3000 trainer.epochs=2: ~50 steps, where BatchNormalization's moving
    statistics used to be far from the trained ones (test_loss 1.83 at 0.69 accuracy)."""
    result = in_process(
        app_main,
        "-m",
        "optimizer.lr=2e-3",
        "dataset.limit=3000",
        "trainer.epochs=2",
        *TINY,
        f"mlflow.tracking_uri={store_uri}",
        cwd=workdir,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    runs = mlflow.search_runs(
        experiment_names=["experiments"],
        filter_string="tags.backbone = 'compact_cnn'",
        output_format="list",
    )
    assert len(runs) == 1
    for run in runs:
        assert run.data.metrics["test_accuracy"] >= 0.6
        assert run.data.metrics["test_loss"] <= 1.2, run.data.metrics
    # Served predictions are confident, not flat (they were ~0.14 for 10 classes).
    from experiments.data.idx import read_idx

    images = read_idx(fashion_dir / "t10k-images-idx3-ubyte.gz")[:200]
    model = mlflow.keras.load_model(f"runs:/{runs[0].info.run_id}/model")
    probabilities = model.predict(images[..., None].astype("float32"), verbose=0)
    assert probabilities.max(axis=1).mean() > 0.5


@pytest.mark.slow
def test_a_run_killed_with_sigkill_resumes_with_one_value_per_step(workdir, store_uri, fashion_dir):
    store.init_store(store_uri, "experiments")  # as a sweep would: before the run opens it
    command = [
        sys.executable,
        "-m",
        "experiments",
        "backbone=custom_cnn",
        "dataset.limit=6000",
        "trainer.epochs=6",
        "trainer.verbose=0",
        "cost=quick",
        "interpretation=off",
        f"mlflow.tracking_uri={store_uri}",
    ]
    process = subprocess.Popen(
        command,
        cwd=workdir,
        env=user_environment(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    client = mlflow.MlflowClient(store_uri)
    experiment_id = client.get_experiment_by_name("experiments").experiment_id
    deadline = time.monotonic() + 300
    run_id = None
    while time.monotonic() < deadline and process.poll() is None:
        runs = client.search_runs([experiment_id])
        if runs and len(client.get_metric_history(runs[0].info.run_id, "val_accuracy")) >= 3:
            run_id = runs[0].info.run_id
            break
        time.sleep(0.1)
    assert run_id, "the run never logged three epochs"
    time.sleep(random.uniform(0.0, 1.0))  # anywhere in the next epoch
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=60)
    state = json.loads((workdir / "checkpoints" / run_id / "last.json").read_text())
    kept = state["epochs"]

    resumed = resume_cli(run_id, store_uri, workdir)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert client.get_run(run_id).info.status == "FINISHED"
    for key in ("loss", "accuracy", "val_loss", "val_accuracy", "epoch_time_s", "stage"):
        history = client.get_metric_history(run_id, key)
        assert sorted(m.step for m in history) == list(range(6)), key
        values = {m.step: m.value for m in history}
        for step, entry in enumerate(kept):  # the epochs whose weights were kept
            assert values[step] == pytest.approx(entry[key]), (key, step)
