"""``phase=scratch``: every weight trainable, from random initialisation."""

from __future__ import annotations

from experiments import backbones
from experiments.phases import CallbackFactory, Outcome, compile_model, fit


def run(cfg, data, callbacks: CallbackFactory) -> Outcome:
    model = backbones.build(cfg, data.input_shape, data.num_classes)
    compile_model(model, cfg)
    history = fit(model, cfg, data, callbacks(0, "scratch"), cfg.trainer.epochs)
    return Outcome(model, history)
