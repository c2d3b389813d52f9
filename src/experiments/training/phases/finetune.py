"""``phase=finetune``: a transfer-learned head first, then the top of the base, gently.

The head comes from an earlier transfer run (``phase.init_from``) or from a warm-up stage
in this run. Then the top ``phase.unfreeze`` layers of the base become trainable, while
the layer classes of the backbone's ``frozen`` (its row in the backbone table; always
BatchNormalization) stay frozen, in inference mode too (the base is called with
``training=False``): updating batch statistics on a small dataset is what wrecks a
pretrained network. ConvNeXt's LayerNormalization is trained: it keeps no statistics
across images and behaves the same in training and inference. The model is recompiled,
as Keras needs after a change of ``trainable``, and trained at ``optimizer.lr`` (1e-5 by
default for this phase).
"""

from __future__ import annotations

import logging

from experiments import models
from experiments.errors import ConfigError
from experiments.tracking.logged_models import load_logged_model
from experiments.training.phases import (
    CallbackFactory,
    build_model,
    compile_model,
    epochs_done,
    fit,
    merge,
    stage_lr,
    total_steps,
    train_head,
    unfreeze_count,
)

log = logging.getLogger(__name__)


def build(cfg, data):
    if cfg.phase.init_from is None:
        return build_model(cfg, data, frozen_bn=True)
    model, description = load_logged_model(cfg.phase.init_from, key="phase.init_from")
    if model.name != cfg.backbone.name:
        raise ConfigError(
            "phase.init_from",
            f"{cfg.phase.init_from} is a {model.name} model: add backbone={model.name}",
        )
    classes = (description.metadata or {}).get("class_names")
    if classes is not None and list(classes) != list(data.class_names):
        raise ConfigError(
            "phase.init_from",
            f"{cfg.phase.init_from} was trained on classes {classes}, the data has "
            f"{data.class_names}: the labels would not mean the same",
        )
    if tuple(model.input_shape[1:]) != tuple(data.input_shape):
        raise ConfigError(
            "phase.init_from",
            f"{cfg.phase.init_from} takes inputs of shape {model.input_shape[1:]}, "
            f"the data has {data.input_shape}: use the same dataset.image_size",
        )
    if model.output_shape[-1] != data.num_classes:
        raise ConfigError(
            "phase.init_from",
            f"{cfg.phase.init_from} predicts {model.output_shape[-1]} classes, "
            f"the data has {data.num_classes}",
        )
    return model


def train(model, cfg, data, callbacks: CallbackFactory, resumed=None) -> dict[str, list[float]]:
    warmup: dict[str, list[float]] = {}
    warmup_epochs = 0 if cfg.phase.init_from is not None else cfg.phase.warmup_epochs
    resuming_finetune = resumed is not None and resumed.stage == "finetune"
    if warmup_epochs and not resuming_finetune:
        warmup = train_head(
            model,
            cfg,
            data,
            callbacks,
            "warmup",
            warmup_epochs,
            lr=cfg.phase.warmup_lr,
            initial_epoch=epochs_done(resumed, "warmup"),
        )
    if resuming_finetune and model.optimizer is not None:
        log.info("Fine-tuning resumes with the checkpoint's trainable layers and optimizer")
    else:
        frozen = models.spec(cfg.backbone.name).frozen
        unfrozen = unfreeze(model.get_layer("base"), unfreeze_count(cfg.phase.unfreeze), frozen)
        lr = stage_lr(model, cfg, (data.x_train, data.y_train), callbacks)
        log.info("Fine-tuning %d layers of the base at lr=%g", len(unfrozen), lr)
        compile_model(model, cfg, lr, total_steps(cfg, data, cfg.trainer.epochs))
    tuned = fit(
        model,
        cfg,
        (data.x_train, data.y_train),
        (data.x_val, data.y_val),
        callbacks("finetune", warmup_epochs),
        cfg.trainer.epochs,
        epochs_done(resumed, "finetune"),
    )
    return merge(warmup, tuned)


def unfreeze(
    base, count: int | None, frozen: tuple[str, ...] = ("BatchNormalization",)
) -> list[str]:
    """Make the top ``count`` layers (None: all) trainable, except those of classes ``frozen``.

    ``frozen`` names classes of ``keras.layers``. Returns the names of the layers left
    trainable.
    """
    from keras import layers

    kept = tuple(getattr(layers, name) for name in frozen)
    base.trainable = True
    top = base.layers if count is None else base.layers[max(0, len(base.layers) - count) :]
    chosen = {id(layer) for layer in top}
    trainable = []
    for layer in base.layers:
        layer.trainable = id(layer) in chosen and not isinstance(layer, kept)
        if layer.trainable:
            _freeze_inside(layer, kept)
        if layer.trainable and layer.weights:
            trainable.append(layer.name)
    return trainable


def _freeze_inside(layer, kept: tuple[type, ...]) -> None:
    """Freeze the ``kept`` layers nested in ``layer`` (ConvNeXt's stem is a Sequential)."""
    for inner in getattr(layer, "layers", []):
        if isinstance(inner, kept):
            inner.trainable = False
        else:
            _freeze_inside(inner, kept)
