"""The learning-rate finder: its curve, its suggestion, and the runs and phases it serves."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from helpers import app_main, in_process, run_cli

from experiments.errors import ConfigError, TrainingError
from experiments.training import lr_find
from experiments.training.settings import compose

TINY = ["trainer.verbose=0", "cost=quick", "interpretation=off", "mlflow.samples=0"]


# ---------------------------------------------------------------- the curve, in NumPy


def test_the_ramp_grows_by_one_factor_from_the_first_rate_to_the_last():
    rates = lr_find.ramp(1e-6, 1.0, 13)
    assert rates[0] == pytest.approx(1e-6) and rates[-1] == pytest.approx(1.0)
    np.testing.assert_allclose(rates[1:] / rates[:-1], 10**0.5)


def test_the_moving_average_is_bias_corrected():
    assert lr_find.smooth([2.0] * 5, 0.9) == pytest.approx([2.0] * 5)  # no pull towards 0
    assert lr_find.smooth([1.0, 3.0], 0.5)[1] == pytest.approx((0.25 * 1 + 0.5 * 3) / (1 - 0.5**2))


def synthetic_curve(knee: float = 1e-3, blow_up: float = 0.3):
    """A loss that falls fastest (against log lr) at ``knee`` and rises past ``blow_up``."""
    rates = lr_find.ramp(1e-7, 10.0, 100)
    x = np.log10(rates)
    loss = 2.3 - 1.8 / (1 + np.exp(-2.5 * (x - np.log10(knee))))
    loss += np.where(rates > blow_up, 3 * (x - np.log10(blow_up)) ** 2, 0.0)
    return rates, loss


def test_steepest_picks_where_the_loss_falls_fastest_and_minimum_a_tenth_of_its_lowest():
    rates, loss = synthetic_curve(knee=1e-3)
    assert lr_find.suggest(rates, loss, "steepest") == pytest.approx(1e-3, rel=0.25)
    lowest = rates[np.argmin(loss)]
    assert 0.05 < lowest <= 0.3  # the fall ends where the blow-up begins
    assert lr_find.suggest(rates, loss, "minimum") == pytest.approx(lowest / 10)
    # Smoothing delays the curve; with the default weight the pick stays within a decade.
    smoothed = lr_find.smooth(loss + np.random.default_rng(0).normal(0, 0.05, 100), 0.9)
    assert 1e-3 <= lr_find.suggest(rates, smoothed, "steepest") < 1e-2


def test_a_curve_that_never_falls_has_no_steepest_descent():
    rates = lr_find.ramp(1e-3, 10.0, 50)
    with pytest.raises(TrainingError, match="did not fall"):
        lr_find.suggest(rates, np.linspace(1.0, 3.0, 50), "steepest")


# ---------------------------------------------------------------- settings


def test_lr_find_is_a_learning_rate_a_run_accepts():
    assert compose(["optimizer.lr=find"]).optimizer.lr == "find"
    assert compose(["optimizer.lr=1"]).optimizer.lr == 1


@pytest.mark.parametrize(
    "overrides, key, fragment",
    [
        (["lr_find.min_lr=1", "lr_find.max_lr=0.1"], "lr_find.min_lr", "below lr_find.max_lr"),
        (["lr_find.steps=5"], "lr_find.steps", ">= 10"),
        (["lr_find.rule=valley"], "lr_find.rule", "steepest"),
        (["lr_find.diverge=1"], "lr_find.diverge", "> 1"),
        (["optimizer.lr=abc"], "optimizer.lr", "'find'"),
        (["optimizer.lr=find", "trainer.strategy=mirrored"], "optimizer.lr", "lr_find"),
    ],
)
def test_bad_settings_are_one_sentence_naming_the_key(overrides, key, fragment):
    with pytest.raises(ConfigError) as info:
        compose(overrides)
    assert info.value.key == key and fragment in str(info.value)


def test_the_command_refuses_bad_input_in_one_line(workdir, capsys):
    """Before TensorFlow is imported: these calls cost milliseconds."""
    from experiments.commands import lr_find as command

    for argv in (["lr_find.steps=3"], ["optimizer.lrr=1"]):
        with pytest.raises(SystemExit) as exit_:
            command.main(argv)
        assert exit_.value.code == 2
    out, err = capsys.readouterr()
    assert out == "" and err.splitlines() == [
        "error: lr_find.steps: must be >= 10 for a curve to read, got 3",
        "error: overrides: Could not override 'optimizer.lrr'. Key 'lrr' not in 'OptimizerConfig'",
    ]
    assert not (workdir / "mlflow.db").exists()  # no store opened


def test_help_answers_without_a_store(tmp_path):
    (tmp_path / "empty").mkdir()
    result = run_cli("--help", cwd=tmp_path / "empty", module="experiments.lr_find")
    assert result.returncode == 0 and "lr_find.rule=steepest" in result.stdout
    assert list((tmp_path / "empty").iterdir()) == []  # no store, no outputs folder


# ---------------------------------------------------------------- the range test on a model


def tiny_model(optimizer=None):
    import keras

    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [keras.Input((4,)), keras.layers.Dense(16, activation="relu"), keras.layers.Dense(3)]
    )
    model.add(keras.layers.Softmax())
    if optimizer:
        model.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy")
    return model


def blobs(n=192):
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, n)
    x = rng.normal(0, 0.5, (n, 4)).astype("float32") + np.eye(3, 4)[y] * 2
    return x, y


def tiny_cfg(*overrides):
    return compose(["optimizer.lr=find", "trainer.batch_size=16", *overrides])


def test_the_ramp_stops_at_divergence_and_the_weights_come_back():
    model = tiny_model(optimizer="adam")
    x, y = blobs()
    model.fit(x, y, epochs=1, verbose=0)  # the model's own optimizer has a state now
    weights = [w.copy() for w in model.get_weights()]
    state = [v.numpy().copy() for v in model.optimizer.variables]
    cfg = tiny_cfg("optimizer=sgd", "lr_find.max_lr=1e4", "lr_find.steps=60")
    found = lr_find.find(model, cfg, (x, y))
    assert found.stopped == "diverged" and len(found.rates) < 60
    np.testing.assert_allclose(found.rates, lr_find.ramp(1e-7, 1e4, 60)[: len(found.rates)])
    assert np.all(np.isfinite(found.smoothed)) and found.rates[0] < found.suggestion < 1e4
    for before, after in zip(weights, model.get_weights(), strict=True):
        np.testing.assert_array_equal(before, after)
    for before, after in zip(state, model.optimizer.variables, strict=True):
        np.testing.assert_array_equal(before, after.numpy())


def test_a_loss_that_is_nan_from_the_first_step_is_refused():
    model = tiny_model()  # as if started from a checkpoint that had blown up
    classifier = model.layers[-2]
    classifier.kernel.assign(np.full(classifier.kernel.shape, np.nan, "float32"))
    with pytest.raises(TrainingError, match="NaN or infinite from the first step"):
        lr_find.find(model, tiny_cfg(), blobs())


# ---------------------------------------------------------------- in runs and phases


@pytest.mark.slow
def test_lr_find_in_a_run_finds_then_trains_in_one_run(workdir, store_uri, fashion_dir):
    import mlflow

    result = in_process(
        app_main,
        "optimizer.lr=find",
        "lr_find.steps=30",
        "dataset.limit=400",
        "trainer.epochs=1",
        "trainer.checkpoints=false",
        *TINY,
        f"mlflow.tracking_uri={store_uri}",
        cwd=workdir,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    (run,) = mlflow.search_runs(experiment_names=["experiments"], output_format="list")
    suggested = run.data.metrics["lr_find.suggested_lr"]
    assert run.data.params["optimizer.lr"] == "find" and "test_accuracy" in run.data.metrics
    assert run.info.run_name.endswith("-lrfind")
    client = mlflow.MlflowClient(store_uri)
    assert {a.path for a in client.list_artifacts(run.info.run_id, "lr_find")} == {
        "lr_find/curve.json",
        "lr_find/curve.png",
    }
    local = client.download_artifacts(run.info.run_id, "lr_find/curve.json", str(workdir))
    curve = json.loads(Path(local).read_text())
    assert curve["suggestion"] == pytest.approx(suggested) and len(curve["lr"]) <= 30
    assert f"suggests lr={suggested:.3g}" in result.stdout  # the finder's line in the run's log


@pytest.mark.slow
def test_fine_tuning_finds_the_rate_of_the_unfrozen_base_after_its_warm_up(
    workdir, store_uri, monkeypatch
):
    """The command on phase=finetune: the head warms up, then the finder ramps the rate of
    the model with its base unfrozen; the curve goes to a run of the experiment lr_find."""
    import mlflow

    from experiments.commands import lr_find as command

    seen = []
    real = lr_find.find

    def spy(model, cfg, train):
        base = model.get_layer("base")
        seen.append((base.trainable, len(model.trainable_weights), len(train[0])))
        return real(model, cfg, train)

    monkeypatch.setattr(lr_find, "find", spy)
    result = in_process(
        command.main,
        "dataset=shapes",
        "dataset.per_class=12",
        "backbone=mobilenet",
        "backbone.weights=null",
        "dataset.image_size=32",
        "phase=finetune",
        "phase.warmup_epochs=1",
        "phase.unfreeze=6",
        "lr_find.steps=20",
        "trainer.verbose=0",
        f"mlflow.tracking_uri={store_uri}",
        cwd=workdir,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    ((base_trainable, trainable, images),) = seen  # once: the fine-tuning stage, not the warm-up
    assert base_trainable and trainable > 2  # more than the head's kernel and bias
    last = result.stdout.strip().splitlines()[-1]
    assert last.startswith("optimizer.lr=") and float(last.split("=")[1]) > 0
    (run,) = mlflow.search_runs(experiment_names=["lr_find"], output_format="list")
    assert run.data.params["phase.name"] == "finetune"
    assert run.data.metrics["lr_find.suggested_lr"] == pytest.approx(
        float(last.split("=")[1]), rel=1e-2
    )
