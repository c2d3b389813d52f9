"""Grad-CAM means something (localisation, randomisation), and ``explain`` says it per image.

One compact CNN is trained on ``dataset=shapes`` at 32 px to at least 90 % (module
fixture); its maps are checked against the shapes' own bounding boxes on 64 images it
never saw (16 per shape), and against the maps of the same network with its top layers
re-initialised (Adebayo et al. 2018, "Sanity checks for saliency maps").
"""

from __future__ import annotations

import json

import mlflow
import numpy as np
import pytest
from helpers import in_process
from PIL import Image

from experiments.commands import explain as explain_command
from experiments.data import shapes
from experiments.errors import ConfigError
from experiments.explaining import gradcam

SIZE, UNSEEN = 32, range(1000, 1016)  # drawings the training folder does not hold


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    from experiments.tracking.logged_models import load_logged_model
    from experiments.training import train
    from experiments.training.settings import compose

    root = tmp_path_factory.mktemp("explain")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(root)
        train.run(
            compose(
                [
                    f"mlflow.tracking_uri={uri}",
                    "dataset=shapes",
                    f"dataset.image_size={SIZE}",
                    "dataset.per_class=400",
                    "trainer.epochs=30",
                    "trainer.batch_size=32",
                    "trainer.verbose=0",
                    "cost=quick",
                    "mlflow.samples=0",
                    "trainer.checkpoints=false",  # the best epoch's weights come back from memory
                    "interpretation=off",  # the tests explain the logged model themselves
                ]
            )
        )
    run = mlflow.MlflowClient(uri).search_runs(["1"])[0]
    mlflow.set_tracking_uri(uri)
    model, _ = load_logged_model(f"runs:/{run.info.run_id}/model", key="model")
    names = sorted(shapes.CLASSES)  # the image folder's class order
    images, boxes, labels = [], [], []
    for k, name in enumerate(shapes.CLASSES):
        for i in UNSEEN:
            images.append(np.asarray(shapes.draw(name, SIZE, np.random.default_rng((0, k, i)))))
            boxes.append(shapes.box(name, SIZE, np.random.default_rng((0, k, i))))
            labels.append(names.index(name))
    return {
        "root": root,
        "uri": uri,
        "run": run,
        "model": model,
        "images": np.stack(images).astype(np.float32),
        "boxes": boxes,
        "labels": np.array(labels),
    }


def _inside(box) -> np.ndarray:
    left, top, right, bottom = box
    ys, xs = np.mgrid[0:SIZE, 0:SIZE] + 0.5  # pixel centres
    return (xs >= left) & (xs <= right) & (ys >= top) & (ys <= bottom)


@pytest.mark.slow
def test_the_map_of_the_true_class_lies_mostly_on_the_shape(trained, record_property):
    assert trained["run"].data.metrics["test_accuracy"] >= 0.9
    explain = gradcam.explainer(trained["model"])
    assert explain.layer == "conv2d_2"  # the last convolution, not the pooling after it
    cams, _, probs = explain.maps(trained["images"], trained["labels"])
    assert np.mean(probs.argmax(axis=1) == trained["labels"]) >= 0.85  # unseen drawings
    mass = [
        cam[_inside(box)].sum() / cam.sum() for cam, box in zip(cams, trained["boxes"], strict=True)
    ]
    area = [_inside(box).mean() for box in trained["boxes"]]
    # Measured: 0.62 (Intel Xeon), 0.58 (AMD EPYC, one run of the suite): the training is
    # not bit-reproducible across CPUs and thread schedules. Chance is the boxes' area, 0.37.
    record_property("mass_inside_box", float(np.mean(mass)))
    assert np.mean(mass) > 0.5, (np.mean(mass), np.mean(area))  # most of the map
    assert np.mean(mass) > np.mean(area) + 0.15  # far from a map spread evenly


@pytest.mark.slow
def test_reinitialised_top_layers_change_the_maps(trained, record_property):
    import keras

    model = trained["model"]
    trained_maps, _, _ = gradcam.explainer(model).maps(trained["images"], trained["labels"])
    copy = keras.models.clone_model(model)
    copy.set_weights(model.get_weights())
    keras.utils.set_random_seed(1)
    top = [copy.get_layer("head"), copy.get_layer("base").get_layer("conv2d_2")]
    for layer in top:
        for inner in getattr(layer, "layers", [layer]):
            for weight in inner.weights:
                if weight.trainable:
                    scale = np.sqrt(2.0 / max(1, int(np.prod(weight.shape[:-1]))))
                    weight.assign(np.random.default_rng(1).normal(0, scale, weight.shape))
    random_maps, _, _ = gradcam.explainer(copy).maps(trained["images"], trained["labels"])
    correlations = [_rank_correlation(a, b) for a, b in zip(trained_maps, random_maps, strict=True)]
    record_property("rank_correlation", float(np.mean(correlations)))
    assert np.mean(correlations) < 0.5, np.mean(correlations)


def _rank_correlation(a: np.ndarray, b: np.ndarray) -> float:
    ranks = [np.argsort(np.argsort(x.ravel())).astype(float) for x in (a, b)]
    if ranks[0].std() == 0 or ranks[1].std() == 0:
        return 0.0
    return float(np.corrcoef(*ranks)[0, 1])


@pytest.mark.slow
def test_explain_writes_an_overlay_and_a_line_per_image_and_names_a_bad_file(trained):
    folder = trained["root"] / "inputs"
    (folder / "sub").mkdir(parents=True)
    for i, image in enumerate(trained["images"][::16]):  # one of each shape
        Image.fromarray(image.astype(np.uint8)).save(folder / ("sub" if i else ".") / f"{i}.png")
    (folder / "broken.png").write_bytes(b"not an image")
    model = f"runs:/{trained['run'].info.run_id}/model"
    result = in_process(
        explain_command.main,
        f"model={model}",
        f"inputs={folder}",
        "output=maps",
        f"mlflow.tracking_uri={trained['uri']}",
        cwd=trained["root"],
    )
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1].startswith(f"error: {folder / 'broken.png'}:")
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [line["input"] for line in lines] == [
        str(folder / name) for name in ("0.png", "sub/1.png", "sub/2.png", "sub/3.png")
    ]
    for line in lines:
        assert line["layer"] == "conv2d_2"
        assert line["explained"] == line["predictions"][0]["class"]
        picture = Image.open(trained["root"] / line["overlay"])
        assert picture.size == (4 * SIZE, 4 * SIZE) and picture.mode == "RGB"
    assert (trained["root"] / "maps" / "sub" / "1.gradcam.png").is_file()

    chosen = in_process(
        explain_command.main,
        f"model={model}",
        f"inputs={folder / 'sub'}",
        "class=star",
        f"mlflow.tracking_uri={trained['uri']}",
        cwd=trained["root"],
    )
    assert chosen.returncode == 0, chosen.stderr
    assert {json.loads(line)["explained"] for line in chosen.stdout.splitlines()} == {"star"}

    unknown = in_process(
        explain_command.main,
        f"model={model}",
        f"inputs={folder}",
        "class=hexagon",
        f"mlflow.tracking_uri={trained['uri']}",
        cwd=trained["root"],
    )
    assert unknown.returncode == 2
    assert "'hexagon' is not a class of" in unknown.stderr
    assert "['circle', 'square', 'star', 'triangle']" in unknown.stderr


def test_a_network_without_a_spatial_layer_is_refused_with_the_override():
    import keras

    dense = keras.Sequential(
        [keras.Input((8, 8, 1)), keras.layers.Flatten(), keras.layers.Dense(3)], name="mlp"
    )
    with pytest.raises(ConfigError, match="mlp has no layer with a spatial output") as info:
        gradcam.explainer(dense)
    assert "layer=<name>" in str(info.value)
    with pytest.raises(ConfigError, match="mlp has no layer 'nope'"):
        gradcam.explainer(dense, "nope")


def test_confused_pairs_and_top_losses_rank_what_they_say():
    from experiments.explaining import interpretation

    labels = np.array([0, 0, 0, 1, 1, 2, 2, 2, 2])
    predicted = np.array([1, 1, 0, 0, 1, 1, 0, 1, 2])
    pairs = interpretation.confused_pairs(labels, predicted, ["a", "b", "c"], 2)
    assert pairs == {
        "true": ["a", "c"],
        "predicted": ["b", "b"],
        "count": [2, 2],
        "share": [round(2 / 3, 4), 0.5],
    }
    probs = np.full((4, 3), 0.1)
    probs[:, 0] = [0.8, 0.01, 0.5, 0.3]
    probs /= probs.sum(axis=1, keepdims=True)
    assert interpretation.top_losses(probs, np.zeros(4, int), 2).tolist() == [1, 3]
    one_hot = np.eye(3)[[0, 1, 0, 2, 0]]
    correct = interpretation.correct_sample(one_hot, np.array([0, 1, 0, 2, 1]), 2)
    assert correct.tolist() == [0, 2, 1, 3]


@pytest.mark.slow
def test_a_model_transferred_from_the_run_is_explained_inside_its_borrowed_base(trained):
    """``backbone.weights=runs:/...``: the base comes from the earlier run's model."""
    import keras

    from experiments import models
    from experiments.training.settings import compose

    cfg = compose(
        [
            "phase=transfer",
            f"backbone.weights=runs:/{trained['run'].info.run_id}/model",
            "dataset=shapes",
            f"dataset.image_size={SIZE}",
        ]
    )
    keras.utils.set_random_seed(0)
    transferred = models.build(cfg, (SIZE, SIZE, 3), 4, frozen_bn=True, logged=trained["model"])
    explain = gradcam.explainer(transferred)
    assert explain.layer == "conv2d_2"
    cams, _, probs = explain.maps(trained["images"][:8])
    assert cams.shape == (8, SIZE, SIZE) and np.isfinite(cams).all() and cams.max() <= 1
    np.testing.assert_allclose(probs, np.asarray(transferred(trained["images"][:8])), atol=1e-4)
