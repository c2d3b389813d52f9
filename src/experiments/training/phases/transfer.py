"""``phase=transfer``: the base frozen and in inference mode; only the new head trains."""

from __future__ import annotations

from experiments.training.phases import CallbackFactory, build_model, epochs_done, train_head


def build(cfg, data):
    return build_model(cfg, data, frozen_bn=True)


def train(model, cfg, data, callbacks: CallbackFactory, resumed=None) -> dict[str, list[float]]:
    return train_head(
        model,
        cfg,
        data,
        callbacks,
        "transfer",
        cfg.trainer.epochs,
        initial_epoch=epochs_done(resumed, "transfer"),
    )
