"""``python -m experiments.predict`` on a real logged model: output formats, exit statuses."""

from __future__ import annotations

import json
import re
import time
from types import SimpleNamespace

import numpy as np
import pytest
from helpers import in_process, run_cli
from PIL import Image

from experiments.commands import predict
from experiments.commands.predict import predict_files
from experiments.data.images import decode
from experiments.reporting.ranking import format_top_k

CLASSES = ["avocado", "cat", "cow", "crab"]
MODULE = "experiments.predict"
GOOD = ["images/a.jpg", "images/sub/b.png"]  # sorted order, as the command lists them
ALL = ["images/a.jpg", "images/bad.jpg", "images/sub/b.png"]


@pytest.fixture(scope="module")
def logged(tmp_path_factory):
    """A 4-class model logged in a fresh store, a folder of images, and its own predictions."""
    import keras
    import mlflow

    from experiments.tracking.logged_models import log_keras_model
    from experiments.tracking.store import init_store

    root = tmp_path_factory.mktemp("predict")
    # The store is not in the commands' cwd: a default store there would hide a missed URI.
    (root / "store").mkdir()
    uri = f"sqlite:///{root / 'store' / 'mlflow.db'}"
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((32, 32, 3)),
            keras.layers.Rescaling(1 / 255),
            keras.layers.GlobalAveragePooling2D(),
            keras.layers.Dense(4, activation="softmax"),
        ]
    )
    previous = mlflow.get_tracking_uri()
    try:
        experiment_id = init_store(uri, "t")  # artifacts beside the database, not in the cwd
        with mlflow.start_run(experiment_id=experiment_id) as run:
            model_uri = log_keras_model(model, CLASSES)
        local = mlflow.artifacts.download_artifacts(model_uri, dst_path=str(root / "local"))
    finally:
        mlflow.set_tracking_uri(previous)

    folder = root / "images"
    (folder / "sub").mkdir(parents=True)
    (folder / ".hidden").mkdir()
    Image.new("RGB", (48, 40), (200, 40, 30)).save(folder / "a.jpg", quality=95)
    gradient = np.linspace(0, 255, 64 * 64 * 3).astype(np.uint8).reshape(64, 64, 3)
    Image.fromarray(gradient).save(folder / "sub" / "b.png")
    (folder / "bad.jpg").write_bytes(b"this is not a JPEG" * 20)
    (folder / "notes.txt").write_text("not an image")
    Image.new("RGB", (8, 8)).save(folder / ".hidden" / "skipped.png")

    pixels = np.stack([decode(root / name, 32, 3) for name in GOOD]).astype(np.float32)
    probs = model.predict(pixels, verbose=0)
    return SimpleNamespace(
        root=root,
        uri=uri,
        run_id=run.info.run_id,
        local=local,
        probs=dict(zip(GOOD, probs, strict=True)),
    )


def _predict(logged, *args, env=None):
    """The command as a user runs it: a process of its own."""
    return run_cli(*args, cwd=logged.root, env=env, module=MODULE)


def _predict_here(logged, *args, env=None):
    """The command's main in this process: the same output and status, without a start-up."""
    return in_process(predict.main, *args, cwd=logged.root, env=env)


@pytest.mark.slow  # a process of its own, which imports TensorFlow (6 s of the fast tier)
def test_folder_text_output_matches_the_models_predictions(logged):
    result = _predict(
        logged,
        f"model=runs:/{logged.run_id}/model",
        "inputs=images",
        "top_k=2",
        f"mlflow.tracking_uri={logged.uri}",
    )

    assert result.returncode == 1, result.stderr  # bad.jpg
    expected = "\n\n".join(
        f"{name}\n{format_top_k(logged.probs[name], CLASSES, 2)}" for name in GOOD
    )
    assert result.stdout == expected + "\n"
    for block in result.stdout.split("\n\n"):
        _, header, *ranks = block.strip().splitlines()
        assert header == "Results provided by selected model:"
        assert len(ranks) == 2
        found = [re.fullmatch(r" {8}#(\d) (\w+) @ (\d+\.\d\d)%", line) for line in ranks]
        assert [m.group(1) for m in found] == ["1", "2"]
        assert float(found[0].group(3)) >= float(found[1].group(3))
    assert "error: images/bad.jpg: cannot decode image" in result.stderr
    assert "Downloading artifacts" not in result.stderr  # MLflow's bars: noise here
    assert "notes.txt" not in result.stdout + result.stderr
    assert "skipped.png" not in result.stdout + result.stderr


def test_json_output_with_the_store_from_the_environment(logged):
    result = _predict_here(
        logged,
        f"model=runs:/{logged.run_id}/model",
        "inputs=images",
        "top_k=9",
        "output=json",
        env={"MLFLOW_TRACKING_URI": logged.uri},
    )

    assert result.returncode == 1, result.stderr
    entries = json.loads(result.stdout)
    assert [entry["input"] for entry in entries] == ALL
    assert entries[1]["error"].startswith("cannot decode image")
    assert "predictions" not in entries[1]
    for entry in (entries[0], entries[2]):
        predictions = entry["predictions"]
        assert len(predictions) == len(CLASSES)  # top_k=9 capped at the number of classes
        expected = logged.probs[entry["input"]]
        for prediction in predictions:
            index = CLASSES.index(prediction["class"])
            assert prediction["probability"] == pytest.approx(expected[index], abs=1e-5)
        probabilities = [p["probability"] for p in predictions]
        assert probabilities == sorted(probabilities, reverse=True)
    assert "error: images/bad.jpg" in result.stderr


def test_single_file_with_a_local_model_folder(logged):
    result = _predict_here(logged, f"model={logged.local}", "inputs=images/sub/b.png")

    assert result.returncode == 0, result.stderr
    block = format_top_k(logged.probs["images/sub/b.png"], CLASSES, 4)
    assert result.stdout == f"images/sub/b.png\n{block}\n"


def test_predict_files_in_process(logged):
    import mlflow

    model = mlflow.pyfunc.load_model(logged.local)
    entries = predict_files(model, [logged.root / name for name in ALL], top_k=1)

    assert [len(entry.get("predictions", [])) for entry in entries] == [1, 0, 1]
    assert "error" in entries[1]
    for entry, name in zip((entries[0], entries[2]), GOOD, strict=True):
        expected = logged.probs[name]
        assert entry["predictions"][0]["class"] == CLASSES[int(np.argmax(expected))]


def test_a_model_that_does_not_exist_is_one_line_and_status_2(logged):
    result = _predict_here(
        logged,
        "model=runs:/0123456789abcdef0123456789abcdef/model",
        "inputs=images",
        f"mlflow.tracking_uri={logged.uri}",
    )

    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: model=runs:/0123456789abcdef0123456789abcdef/model: ")
    assert result.stdout == ""


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["model=whatever", "inputs=no/such/folder"], "error: inputs=no/such/folder: "),
        (["model=whatever", "inputs=images", "topk=3"], "error: topk: "),
    ],
    ids=["missing-inputs", "unknown-key"],
)
def test_bad_arguments_are_rejected_before_loading_anything(logged, args, named):
    result = _predict_here(logged, *args)

    assert result.returncode == 2
    assert result.stderr.startswith(named), result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_help_is_quick_and_lists_the_keys(logged):
    start = time.monotonic()
    result = _predict(logged, "--help")

    assert result.returncode == 0, result.stderr
    assert "top_k" in result.stdout and "mlflow.tracking_uri" in result.stdout
    assert time.monotonic() - start < 15  # no TensorFlow, no MLflow: about half a second


@pytest.mark.slow  # a registry and four commands: the whole suite checks it
def test_calibrated_probabilities_use_the_temperature_the_run_fitted(logged):
    import mlflow

    from experiments.reporting import calibration
    from experiments.tracking.logged_models import register_champion

    common = ["inputs=images/sub/b.png", "output=json", f"mlflow.tracking_uri={logged.uri}"]
    uncalibrated = _predict_here(logged, f"model=runs:/{logged.run_id}/model", *common)
    assert (
        "calibrated"
        in _predict_here(
            logged, f"model=runs:/{logged.run_id}/model", "calibrated=true", *common
        ).stderr
    )  # none logged yet
    mlflow.MlflowClient(logged.uri).log_metric(logged.run_id, "temperature", 2.0)
    register_champion(logged.uri, logged.run_id, "calibrated_model", "register_as")
    expected = calibration.scaled(logged.probs["images/sub/b.png"][None], 2.0)[0]
    for model in (f"runs:/{logged.run_id}/model", "models:/calibrated_model@champion"):
        result = _predict_here(logged, f"model={model}", "calibrated=true", *common)
        assert result.returncode == 0, result.stderr
        assert "temperature 2" in result.stderr
        found = {p["class"]: p["probability"] for p in json.loads(result.stdout)[0]["predictions"]}
        for index, name in enumerate(CLASSES):
            assert found[name] == pytest.approx(expected[index], abs=1e-5)
    # Softer, never another answer.
    before = json.loads(uncalibrated.stdout)[0]["predictions"]
    assert before[0]["class"] == max(found, key=found.get)
    assert max(found.values()) < before[0]["probability"]
    folder = _predict_here(logged, f"model={logged.local}", "calibrated=true", *common[:2])
    assert folder.returncode == 2 and "error: calibrated" in folder.stderr
