"""Keras optimizers from the ``optimizer`` config group."""

from __future__ import annotations


def build(cfg, lr: float | None = None):
    """The optimizer ``cfg.name`` with learning rate ``lr`` (else ``cfg.lr``), never rescaled."""
    from keras import optimizers

    lr = cfg.lr if lr is None else lr

    if cfg.name == "adam":
        return optimizers.Adam(learning_rate=lr)
    if cfg.name == "sgd":
        return optimizers.SGD(learning_rate=lr, momentum=cfg.momentum, nesterov=cfg.nesterov)
    if cfg.name == "rmsprop":
        return optimizers.RMSprop(learning_rate=lr, momentum=cfg.momentum)
    raise ValueError(f"unknown optimizer {cfg.name!r}")  # validate() stops this earlier
