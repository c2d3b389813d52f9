"""``phase=scratch``: every weight trainable, from the backbone's initial weights."""

from __future__ import annotations

from experiments.training.phases import (
    CallbackFactory,
    build_model,
    compile_model,
    epochs_done,
    fit,
    stage_lr,
    total_steps,
)


def build(cfg, data):
    return build_model(cfg, data)


def train(model, cfg, data, callbacks: CallbackFactory, resumed=None) -> dict[str, list[float]]:
    if resumed is None or model.optimizer is None:
        lr = stage_lr(model, cfg, (data.x_train, data.y_train), callbacks)
        compile_model(model, cfg, lr, total_steps(cfg, data, cfg.trainer.epochs))
    return fit(
        model,
        cfg,
        (data.x_train, data.y_train),
        (data.x_val, data.y_val),
        callbacks("scratch", 0),
        cfg.trainer.epochs,
        epochs_done(resumed, "scratch"),
    )
