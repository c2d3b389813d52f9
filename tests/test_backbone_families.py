"""A modern family transfers, fine-tunes, and comes back from its runs.

``transfer`` and ``finetune`` (from the transfer run's model) on ``dataset=shapes``, end to
end through ``train.run``; each logged model is loaded back in Keras' safe mode and
predicts raw pixels, and the transfer run's base starts a new model
(``backbone.weights=runs:/...``) weight for weight.
"""

from __future__ import annotations

from types import SimpleNamespace

import mlflow
import numpy as np
import pytest

from experiments.data import shapes
from experiments.tracking.logged_models import load_logged_model
from experiments.training import phases, train
from experiments.training.settings import compose

# One modern family end to end: MobileNetV3 (rescaling and hard-swish inside the base), the
# cheapest. Every family's first row, ConvNeXt's LayerScale and EfficientNet's Normalization
# among them, is saved and loaded back in safe mode and fine-tuned a step in
# test_backbone_rows.py; what this test adds (train.run, the logged model, runs:/ reuse, the
# fine-tuning run) is the same code for every family.
FAMILIES = ["mobilenetv3_small"]
SIZE = 32
QUICK = [
    "dataset=shapes",
    f"dataset.image_size={SIZE}",
    "dataset.per_class=6",
    "trainer.epochs=1",
    "trainer.verbose=0",
    "cost=quick",
    "interpretation=off",
    "mlflow.samples=0",
    "trainer.checkpoints=false",
    "trainer.batch_size=8",
]


def _latest_run():
    return mlflow.search_runs(
        experiment_names=["experiments"],
        output_format="list",
        max_results=1,
        order_by=["attributes.start_time DESC"],
    )[0]


def _predicts_after_safe_loading(uri: str):
    model, _ = load_logged_model(uri, key="test")  # safe_mode=True
    raw = np.random.default_rng(0).integers(0, 256, (2, SIZE, SIZE, 3)).astype("float32")
    probs = model.predict(raw, verbose=0)
    assert probs.shape == (2, len(shapes.CLASSES))
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)
    return model


@pytest.mark.slow
@pytest.mark.parametrize("backbone", FAMILIES)
def test_transfer_then_finetune_then_reuse_the_base(workdir, store_uri, backbone):
    common = [*QUICK, f"backbone={backbone}", f"mlflow.tracking_uri={store_uri}"]
    train.run(compose([*common, "phase=transfer", "backbone.weights=null"]))
    transfer = _latest_run()
    assert transfer.info.status == "FINISHED"
    transfer_uri = f"runs:/{transfer.info.run_id}/model"
    transferred = _predicts_after_safe_loading(transfer_uri)

    cfg = compose([*common, "phase=transfer", f"backbone.weights={transfer_uri}"])
    shape = SimpleNamespace(input_shape=(SIZE, SIZE, 3), num_classes=len(shapes.CLASSES))
    reused = phases.build_model(cfg, shape, frozen_bn=True)  # the trainer loads the run's model
    theirs = transferred.get_layer("base").get_weights()
    ours = reused.get_layer("base").get_weights()
    assert all(np.array_equal(a, b) for a, b in zip(theirs, ours, strict=True))

    train.run(compose([*common, "phase=finetune", f"phase.init_from={transfer_uri}"]))
    tuned = _latest_run()
    assert tuned.info.status == "FINISHED" and tuned.data.tags["stages"].startswith("finetune")
    _predicts_after_safe_loading(f"runs:/{tuned.info.run_id}/model")
