"""Keras optimizers from the ``optimizer`` config group."""

from __future__ import annotations


def learning_rate(cfg, lr: float | None = None, steps: int | None = None):
    """``lr`` (else ``cfg.lr``), never rescaled; a schedule with ``cfg.schedule=cosine``.

    The cosine schedule, given the stage's total ``steps``, climbs linearly from a tenth
    of ``lr`` to ``lr`` over the first ``cfg.warmup`` of the steps, then follows a cosine
    down to zero at the last step.
    """
    from keras import optimizers

    lr = cfg.lr if lr is None else lr
    if cfg.schedule != "cosine" or not steps:
        return lr
    warmup = int(steps * cfg.warmup)
    return optimizers.schedules.CosineDecay(
        lr / 10 if warmup else lr, max(1, steps - warmup),
        warmup_target=lr if warmup else None, warmup_steps=warmup,
    )  # fmt: skip


def build(cfg, lr: float | None = None, steps: int | None = None):
    """The optimizer ``cfg.name`` at ``learning_rate(cfg, lr, steps)``."""
    from keras import optimizers

    lr = learning_rate(cfg, lr, steps)

    if cfg.name == "adam":
        return optimizers.Adam(learning_rate=lr)
    if cfg.name == "sgd":
        return optimizers.SGD(learning_rate=lr, momentum=cfg.momentum, nesterov=cfg.nesterov)
    if cfg.name == "rmsprop":
        return optimizers.RMSprop(learning_rate=lr, momentum=cfg.momentum)
    raise ValueError(f"unknown optimizer {cfg.name!r}")  # validate() stops this earlier
