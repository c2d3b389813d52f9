"""``phase=transfer``: the base frozen and in inference mode; only the new head trains."""

from __future__ import annotations

from experiments import models as backbones
from experiments.training.phases import CallbackFactory, done, train_head


def build(cfg, data):
    return backbones.build(cfg, data.input_shape, data.num_classes, frozen_bn=True)


def train(model, cfg, data, callbacks: CallbackFactory, start=None) -> dict[str, list[float]]:
    return train_head(model, cfg, data, callbacks("transfer", 0), cfg.trainer.epochs,
                      initial_epoch=done(start, "transfer"))  # fmt: skip
