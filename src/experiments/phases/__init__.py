"""Training phases: each builds the model it needs, trains it and returns the outcome."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field

# (step_offset, stage) -> Keras callbacks for one call to fit()
CallbackFactory = Callable[[int, str], list]


@dataclass
class Outcome:
    model: object  # the whole keras.Model, taking raw 0-255 pixels
    history: dict[str, list[float]] = field(default_factory=dict)  # per epoch, all stages


def run(cfg, data, callbacks: CallbackFactory) -> Outcome:
    """Run the phase named by ``cfg.phase.name``."""
    return importlib.import_module(f"experiments.phases.{cfg.phase.name}").run(cfg, data, callbacks)


def compile_model(model, cfg, lr: float | None = None) -> None:
    """Compile with the configured optimizer (``lr`` overrides its learning rate)."""
    from experiments import optimizers

    model.compile(
        optimizer=optimizers.build(cfg.optimizer, lr=lr),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
        steps_per_execution=cfg.trainer.steps_per_execution,
    )


def fit(model, cfg, data, callbacks: list, epochs: int) -> dict[str, list[float]]:
    history = model.fit(
        data.x_train,
        data.y_train,
        validation_data=(data.x_val, data.y_val),
        epochs=epochs,
        batch_size=cfg.trainer.batch_size,
        callbacks=callbacks,
        verbose=cfg.trainer.verbose,
    )
    return {k: [float(v) for v in vs] for k, vs in history.history.items()}
