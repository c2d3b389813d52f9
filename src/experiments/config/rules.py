"""The rules every configuration obeys, whatever its backbone, dataset, phase or optimizer.

A rule is ``(holds, key, message)``; ``first_broken`` raises ConfigError naming the key of
the first that does not hold. The rules of one kind's options (a dataset's keys, a
backbone's minimum size) live with that kind's registry; ``refuse_unused`` is their
common check that a key the chosen option ignores was not set.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from omegaconf import DictConfig

from experiments.errors import ConfigError

STRATEGIES = ("default", "mirrored", "multi_worker")
PRECISIONS = ("auto", "float32", "mixed_bfloat16", "mixed_float16")
SCHEDULES = ("constant", "cosine")
METRICS = ("val_accuracy", "val_loss", "accuracy", "loss", "test_accuracy", "test_loss")

Rule = tuple[bool, str, str]

log = logging.getLogger(__name__)


def one_of(value: str, choices: Iterable[str], key: str, what: str) -> Rule:
    choices = list(choices)
    return value in choices, key, f"unknown {what} {value!r}; choose one of {choices}"


def first_broken(rules: Iterable[Rule]) -> None:
    """Raise ConfigError for the first rule that does not hold."""
    for holds, key, message in rules:
        if not holds:
            raise ConfigError(key, message)


def refuse_unused(
    node: DictConfig, group: str, uses: dict[str, tuple[str, ...]], defaults, swept: bool = False
) -> None:
    """Refuse a key of ``group`` that the chosen option does not read but was set anyway.

    ``uses`` maps each option to the option-specific keys it reads; ``defaults`` is the
    group's schema instance, whose values mean "not set". In a sweep over the group's
    options (``swept``: ``phase=transfer,finetune phase.warmup_epochs=1``) the key is
    meant for the options that read it: the others only say so in the log.
    """
    option = node.name
    specific = {key for keys in uses.values() for key in keys}
    for key in sorted(specific - set(uses[option])):
        if node.get(key) == getattr(defaults, key):
            continue
        readers = ", ".join(name for name, keys in uses.items() if key in keys)
        unused = f"{group}={option} does not use it (only {readers} do)"
        if swept:
            log.info("%s.%s=%s: %s; this sweep varies %s", group, key, node.get(key), unused, group)
            continue
        raise ConfigError(f"{group}.{key}", f"{unused}; remove {group}.{key}={node.get(key)}")


def validate(cfg: DictConfig) -> None:
    """The optimizer's, trainer's and MLflow's ranges, and the run's metric and seed."""
    o, t, m, c = cfg.optimizer, cfg.trainer, cfg.mlflow, cfg.cost
    stopping = t.early_stopping
    first_broken(
        [
            one_of(cfg.metric, METRICS, "metric", "metric"),
            one_of(t.strategy, STRATEGIES, "trainer.strategy", "strategy"),
            one_of(t.precision, PRECISIONS, "trainer.precision", "precision"),
            one_of(o.schedule, SCHEDULES, "optimizer.schedule", "schedule"),
            (0 <= o.warmup < 1, "optimizer.warmup", f"must be in [0, 1), got {o.warmup}"),
            (
                o.lr == "find" or isinstance(o.lr, int | float),
                "optimizer.lr",
                f"must be a number or 'find' (the learning-rate finder), got {o.lr!r}",
            ),
            (isinstance(o.lr, str) or o.lr > 0, "optimizer.lr", f"must be > 0, got {o.lr}"),
            (o.momentum >= 0, "optimizer.momentum", f"must be >= 0, got {o.momentum}"),
            (t.threads is None or t.threads >= 1, "trainer.threads", "must be >= 1 or null"),
            (t.logical_cpus is None or t.logical_cpus >= 1, "trainer.logical_cpus", "must be >= 1"),
            (t.epochs >= 1, "trainer.epochs", f"must be >= 1, got {t.epochs}"),
            (t.batch_size >= 1, "trainer.batch_size", f"must be >= 1, got {t.batch_size}"),
            (t.steps_per_execution >= 1, "trainer.steps_per_execution", "must be >= 1"),
            (
                stopping.patience is None or stopping.patience >= 1,
                "trainer.early_stopping.patience",
                f"must be >= 1 or null, got {stopping.patience}",
            ),
            (
                stopping.min_delta >= 0,
                "trainer.early_stopping.min_delta",
                f"must be >= 0, got {stopping.min_delta}",
            ),
            (m.samples >= 0, "mlflow.samples", f"must be >= 0, got {m.samples}"),
            (m.top_k >= 1, "mlflow.top_k", f"must be >= 1, got {m.top_k}"),
            (bool(m.experiment_name), "mlflow.experiment_name", "must not be empty"),
            (cfg.seed >= 0, "seed", f"must be >= 0, got {cfg.seed}"),
            (c.warmup_calls >= 0, "cost.warmup_calls", f"must be >= 0, got {c.warmup_calls}"),
            (c.latency_calls >= 1, "cost.latency_calls", f"must be >= 1, got {c.latency_calls}"),
            (c.throughput_batch >= 1, "cost.throughput_batch", "must be >= 1"),
            (c.throughput_seconds >= 0, "cost.throughput_seconds", "must be >= 0"),
        ]
    )
