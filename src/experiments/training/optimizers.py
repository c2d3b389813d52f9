"""The optimizer table: every ``optimizer=<name>`` option, its Keras class and the keys it reads.

Adding an optimizer is a row here; ``conf/optimizer/<name>.yaml`` may give it defaults
other than the schema's (a test checks the table against ``conf/optimizer/``). A key of
its own is a field of ``config.schema.OptimizerConfig``.
"""

from __future__ import annotations

from dataclasses import dataclass

from omegaconf import DictConfig

from experiments.config.rules import first_broken, one_of, refuse_unused
from experiments.config.schema import OptimizerConfig, register_options


@dataclass(frozen=True)
class OptimizerSpec:
    name: str  # the Hydra option: optimizer=<name>
    keras_class: str  # in keras.optimizers, called with learning_rate= and its keys
    keys: tuple[str, ...] = ()  # the keys of its own it reads, beyond lr and the schedule


OPTIMIZERS = {
    row.name: row
    for row in (
        OptimizerSpec("adam", "Adam"),
        OptimizerSpec("sgd", "SGD", keys=("momentum", "nesterov")),
        OptimizerSpec("rmsprop", "RMSprop", keys=("momentum",)),
    )
}


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
        lr / 10 if warmup else lr,
        max(1, steps - warmup),
        warmup_target=lr if warmup else None,
        warmup_steps=warmup,
    )


def build(cfg, lr: float | None = None, steps: int | None = None):
    """The optimizer ``cfg.name`` at ``learning_rate(cfg, lr, steps)``, with the keys it reads."""
    from keras import optimizers

    row = OPTIMIZERS[cfg.name]
    settings = {key: cfg[key] for key in row.keys}
    return getattr(optimizers, row.keras_class)(
        learning_rate=learning_rate(cfg, lr, steps), **settings
    )


def check(cfg: DictConfig, swept: bool = False) -> None:
    """A known optimizer, and none of the keys it ignores (``momentum`` with Adam)."""
    first_broken([one_of(cfg.name, OPTIMIZERS, "optimizer.name", "optimizer")])
    uses = {name: row.keys for name, row in OPTIMIZERS.items()}
    refuse_unused(cfg, "optimizer", uses, OptimizerConfig(name=cfg.name), swept)


def register() -> None:
    """``optimizer=<name>`` for every row without a YAML file of its own."""
    register_options("optimizer", {name: OptimizerConfig(name=name) for name in OPTIMIZERS})
