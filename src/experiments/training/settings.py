"""The whole configuration: composed as the command line composes it, and judged.

``validate`` applies the rules every run obeys (``config.rules``) and then those of the
chosen option of each group, which live with their registries: the backbone table, the
dataset table, the phases and the optimizers. Nothing here imports TensorFlow, so a bad
command line fails in well under a second. Importing this module registers the schema
and the backbone options with Hydra.
"""

from __future__ import annotations

from omegaconf import DictConfig

from experiments.config import rules, schema
from experiments.data import registry as datasets
from experiments.models import options as backbones
from experiments.tracking import sweeps
from experiments.training import lr_find, optimizers, phases

schema.register()
backbones.register()
datasets.register()
optimizers.register()


def validate(cfg: DictConfig) -> None:
    """Raise ConfigError naming the first invalid key of a composed configuration."""
    swept = sweeps.swept_groups()  # a key for some of the options a sweep runs is not refused
    phases.check(cfg.phase, "phase" in swept)
    optimizers.check(cfg.optimizer, "optimizer" in swept)
    datasets.check(cfg.dataset, "dataset" in swept)
    backbones.check(cfg)
    rules.validate(cfg)
    lr_find.check(cfg)


def compose(overrides: list[str] | None = None) -> DictConfig:
    """Compose and validate the configuration as the command line would (for tests and tools)."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    with initialize_config_dir(config_dir=str(schema.CONF_DIR), version_base="1.3"):
        cfg = hydra_compose(config_name="config", overrides=list(overrides or []))
    validate(cfg)
    return cfg
