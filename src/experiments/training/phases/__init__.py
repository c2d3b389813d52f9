"""Training phases. Each phase module has ``build(cfg, data)``, which makes the model it
starts from, and ``train(model, cfg, data, callbacks, resumed=None)``, which trains it and
returns the per-epoch history (all stages, one step axis). ``resumed`` is the checkpoint
state of a resumed run: the stage and epochs already done; its model is the checkpoint,
already compiled with its optimizer's state when that stage trained the whole model."""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

from omegaconf import DictConfig

from experiments import models, progress
from experiments.config.rules import first_broken, one_of, refuse_unused
from experiments.config.schema import PhaseConfig
from experiments.data import stream
from experiments.errors import ConfigError
from experiments.models.augmentation import is_active
from experiments.tracking.logged_models import load_logged_model
from experiments.training import lr_find, optimizers
from experiments.training.frozen_features import frozen_features
from experiments.uris import is_model_uri

log = logging.getLogger(__name__)

# (stage, first step) -> Keras callbacks for one call to fit(); its ``tag(tags)`` sets run
# tags, its ``lr_found(found)`` records what the learning-rate finder found (optimizer.lr=find)
CallbackFactory = Callable[[str, int], list]

# Each phase, a module of this package, and the keys of ``phase.*`` it reads.
PHASES = {
    "scratch": (),
    "transfer": ("cache_features",),
    "finetune": ("unfreeze", "init_from", "warmup_epochs", "warmup_lr", "cache_features"),
}


def module(name: str) -> ModuleType:
    """The module of phase ``name``: its ``build(cfg, data)`` and ``train(...)``."""
    return importlib.import_module(f"experiments.training.phases.{name}")


def check(p: DictConfig, swept: bool = False) -> None:
    """A known phase, its settings in range, and none of the keys it ignores."""
    first_broken([one_of(p.name, PHASES, "phase.name", "phase")])
    refuse_unused(p, "phase", PHASES, PhaseConfig(name=p.name), swept)
    first_broken(
        [
            (p.warmup_epochs >= 0, "phase.warmup_epochs", f"must be >= 0, got {p.warmup_epochs}"),
            (p.warmup_lr > 0, "phase.warmup_lr", f"must be > 0, got {p.warmup_lr}"),
            (
                p.init_from is None or is_model_uri(p.init_from) or Path(p.init_from).exists(),
                "phase.init_from",
                f"{p.init_from} is neither a model URI (runs:/<run_id>/model) nor an existing path",
            ),
            (
                p.name != "finetune" or p.init_from or p.warmup_epochs >= 1,
                "phase.warmup_epochs",
                "finetune needs a trained head: set phase.init_from=<transfer run's model URI> "
                "or phase.warmup_epochs >= 1",
            ),
        ]
    )
    unfreeze_count(p.unfreeze)


def unfreeze_count(value: str) -> int | None:
    """``phase.unfreeze`` as a layer count, or None for ``all``."""
    if str(value).lower() == "all":
        return None
    try:
        count = int(value)
    except ValueError:
        raise ConfigError(
            "phase.unfreeze", f"must be 'all' or a number of layers, got {value!r}"
        ) from None
    if count < 0:
        raise ConfigError("phase.unfreeze", f"must be >= 0, got {count}")
    return count


def build_model(cfg, data, frozen_bn: bool = False):
    """The backbone's model for ``data``; a ``runs:/`` ``backbone.weights`` loaded here."""
    logged = None
    if is_model_uri(cfg.backbone.weights):
        logged, _ = load_logged_model(cfg.backbone.weights, key="backbone.weights")
    return models.build(cfg, data.input_shape, data.num_classes, frozen_bn=frozen_bn, logged=logged)


def stage_lr(model, cfg, train, callbacks: CallbackFactory) -> float:
    """The rate of the stage that trains at ``optimizer.lr``: that, or with
    ``optimizer.lr=find`` the finder's suggestion for ``model`` (its trainable layers as the
    stage sets them) on ``train``, (inputs, labels), reported to ``callbacks.lr_found``."""
    if not lr_find.wanted(cfg):
        return cfg.optimizer.lr
    found = lr_find.find(model, cfg, train)
    callbacks.lr_found(found)
    return found.suggestion


def compile_model(model, cfg, lr: float | None = None, steps: int | None = None) -> None:
    """Compile with the configured optimizer (``lr`` overrides its learning rate).

    ``steps``: the stage's total training steps, for a learning-rate schedule.
    """
    model.compile(
        optimizer=optimizers.build(cfg.optimizer, lr=lr, steps=steps),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
        steps_per_execution=_steps_per_execution(cfg.trainer.steps_per_execution),
    )


def _steps_per_execution(wanted: int) -> int:
    """``wanted``, except under a tf.distribute strategy, where Keras 3.15 fails with it
    ("You must feed a value for placeholder tensor"): one batch per call there."""
    import tensorflow as tf

    if wanted > 1 and tf.distribute.has_strategy():
        log.warning(
            "trainer.steps_per_execution=%d is not supported with trainer.strategy; using 1",
            wanted,
        )
        return 1
    return wanted


def fit(
    model, cfg, train, val, callbacks: list, epochs: int, initial_epoch: int = 0
) -> dict[str, list[float]]:
    """``model.fit`` on ``train``/``val`` pairs of (inputs, labels); the history as floats.

    ``initial_epoch`` > 0 continues a stage (resume): epochs keep their numbers.
    """
    if initial_epoch >= epochs:
        return {}
    batch = cfg.trainer.batch_size
    train_steps = stream.steps(len(train[0]), batch)
    fit_batchnorm_momentum(model, train_steps)
    if stream.usable():
        feed = {
            "x": stream.training(*train, batch, cfg.seed),
            "validation_data": stream.evaluation(*val, batch),
            "shuffle": False,  # the stream reshuffles every pass itself
        }
    else:  # Keras distributes the arrays over the strategy's replicas itself
        validation = (stream.in_memory(val[0]), val[1])
        feed = {
            "x": stream.in_memory(train[0]),
            "y": train[1],
            "batch_size": batch,
            "validation_data": validation,
        }
    history = model.fit(
        **feed,
        epochs=epochs,
        initial_epoch=initial_epoch,
        callbacks=[*callbacks, progress.keras_logger()] if cfg.trainer.verbose else callbacks,
        verbose=cfg.trainer.verbose,
    )
    return {k: [float(v) for v in vs] for k, vs in history.history.items()}


def fit_batchnorm_momentum(model, steps_per_epoch: int) -> None:
    """Shorten the memory of the trainable BatchNormalization layers to the run's length.

    Their moving statistics start at mean 0 and variance 1, and Keras' momentum of 0.99
    keeps 0.99**n of that start after n steps: 60% after 50 steps. A short run then
    evaluates with statistics unlike the ones it trained with, and reports a loss near
    chance. The momentum is lowered so that the start weighs under 1% after one epoch;
    from about 460 steps per epoch on it stays at 0.99, and only inference changes.
    """
    from keras import layers

    ceiling = 0.01 ** (1 / max(steps_per_epoch, 1))
    changed = set()
    for layer in _all_layers(model):
        if isinstance(layer, layers.BatchNormalization) and layer.trainable:
            if layer.momentum > ceiling:
                changed.add(layer.momentum)
                layer.momentum = ceiling
    if changed:
        log.info(
            "BatchNormalization momentum %s -> %.3f for %d steps per epoch",
            ", ".join(f"{m:g}" for m in sorted(changed)),
            ceiling,
            steps_per_epoch,
        )


def _all_layers(layer):
    for child in getattr(layer, "layers", []):
        yield child
        yield from _all_layers(child)


def merge(*histories: dict[str, list[float]]) -> dict[str, list[float]]:
    """Histories of consecutive stages, end to end."""
    merged: dict[str, list[float]] = {}
    for history in histories:
        for key, values in history.items():
            merged.setdefault(key, []).extend(values)
    return merged


def freeze_base(model) -> None:
    model.get_layer("base").trainable = False


def total_steps(cfg, data, epochs: int) -> int:
    """Training steps of ``epochs`` epochs over ``data``'s training set."""
    return epochs * stream.steps(len(data.x_train), cfg.trainer.batch_size)


def epochs_done(resumed, stage: str) -> int:
    """Epochs of ``stage`` already done in a resumed run (0 when not resuming it)."""
    return resumed.epochs_done if resumed is not None and resumed.stage == stage else 0


def train_head(
    model,
    cfg,
    data,
    callbacks: CallbackFactory,
    stage: str,
    epochs: int,
    lr: float | None = None,
    initial_epoch: int = 0,
):
    """Train the head over a frozen base as stage ``stage``, at ``lr`` (None: the stage's
    rate, ``stage_lr``); on the base's features when nothing is random.

    With augmentation on, every epoch sees different pixels, so the base must run live.
    Otherwise its features are computed once (or found on disk, from an earlier run over
    the same image cache) and the head trains on them alone: the same result (the base
    is frozen and in inference mode), many times faster. A tag records on the run
    whether the features were computed or reused.
    """
    stage_callbacks = callbacks(stage, 0)
    if initial_epoch >= epochs:
        return {}
    freeze_base(model)
    train = (data.x_train, data.y_train)
    if is_active(cfg.dataset.augment) or not cfg.phase.cache_features:
        if initial_epoch == 0 or model.optimizer is None:
            lr = stage_lr(model, cfg, train, callbacks) if lr is None else lr
            compile_model(model, cfg, lr, total_steps(cfg, data, epochs))
        val = (data.x_val, data.y_val)
        return fit(model, cfg, train, val, stage_callbacks, epochs, initial_epoch)
    import keras

    extractor = keras.Sequential([model.get_layer("preprocess"), model.get_layer("base")])
    features = frozen_features(extractor, data, cfg)
    callbacks.tag({"frozen_features": features.how})
    head = model.get_layer("head")
    if initial_epoch:
        log.info("Resuming the head's training with a fresh optimizer state (cached features)")
    train = (features.train, data.y_train)
    lr = stage_lr(head, cfg, train, callbacks) if lr is None else lr
    compile_model(head, cfg, lr, total_steps(cfg, data, epochs))
    history = fit(
        head, cfg, train, (features.val, data.y_val), stage_callbacks, epochs, initial_epoch
    )
    # The whole model evaluates and predicts from raw images. Its optimizer is built now,
    # over the same trainable weights as the head's, so the saved model's optimizer state
    # matches what Keras rebuilds when it loads it (no "skipping variable loading").
    compile_model(model, cfg, lr)
    model.optimizer.build(model.trainable_variables)
    return history
