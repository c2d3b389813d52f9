"""The configuration schema, registered in Hydra's ConfigStore, and its validation.

The dataclasses make Hydra reject an unknown key or a value of the wrong type while
it composes; ``validate`` checks the ranges and cross-field rules. Neither imports
TensorFlow, so a bad command line fails in well under a second.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, DictConfig, OmegaConf

from experiments import backbones
from experiments.errors import ConfigError

CONF_DIR = Path(__file__).resolve().parent / "conf"

PHASES = ("scratch",)
OPTIMIZERS = ("adam", "sgd", "rmsprop")
DATASETS = ("fashion_mnist",)
METRICS = ("val_accuracy", "val_loss", "accuracy", "loss", "test_accuracy", "test_loss")


@dataclass
class BackboneConfig:
    name: str = MISSING  # a module of experiments.backbones


@dataclass
class PhaseConfig:
    name: str = MISSING  # scratch: every weight trainable from random initialisation


@dataclass
class OptimizerConfig:
    name: str = MISSING  # adam | sgd | rmsprop
    lr: float = 1e-3
    momentum: float = 0.0  # sgd and rmsprop only
    nesterov: bool = False  # sgd only


@dataclass
class DatasetConfig:
    name: str = MISSING
    root: str | None = None  # where the files are; null = look in the usual places
    limit: int | None = None  # cap on training samples, for quick runs; null = all
    val_split: float = 0.1  # share of the training set held out for validation
    image_size: int = 28  # height and width the model sees
    channels: int = 1  # 1 = grayscale, 3 = RGB


@dataclass
class TrainerConfig:
    epochs: int = 10
    batch_size: int = 32
    steps_per_execution: int = 1  # >1 runs several batches per call: less overhead on CPU
    deterministic: bool = True  # TensorFlow's op determinism: same seed, same result
    verbose: int = 1  # Keras' progress output: 0 silent, 1 progress bar, 2 one line per epoch


@dataclass
class MlflowConfig:
    tracking_uri: str | None = None  # null = $MLFLOW_TRACKING_URI, else ./mlflow.db
    experiment_name: str = "experiments"
    run_name: str | None = None  # null = <backbone>-<phase>-<optimizer>-lr<lr>
    log_model: bool = True
    samples: int = 12  # test images drawn in the prediction grid
    top_k: int = 3  # probabilities kept per sample in the top-k table


@dataclass
class Config:
    backbone: BackboneConfig = field(default_factory=BackboneConfig)
    phase: PhaseConfig = field(default_factory=PhaseConfig)
    optimizer: OptimizerConfig = field(default_factory=OptimizerConfig)
    dataset: DatasetConfig = field(default_factory=DatasetConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    mlflow: MlflowConfig = field(default_factory=MlflowConfig)
    seed: int = 42
    metric: str = "val_accuracy"  # what the main function returns to sweepers


def register() -> None:
    ConfigStore.instance().store(name="base_config", node=Config)


register()


def _check(ok: bool, key: str, message: str) -> None:
    if not ok:
        raise ConfigError(key, message)


def validate(cfg: DictConfig) -> None:
    """Raise ConfigError naming the first invalid key of a composed configuration."""
    spec = backbones.spec(cfg.backbone.name)
    _check(
        cfg.phase.name in PHASES,
        "phase.name",
        f"unknown phase {cfg.phase.name!r}; choose one of {list(PHASES)}",
    )
    _check(
        cfg.optimizer.name in OPTIMIZERS,
        "optimizer.name",
        f"unknown optimizer {cfg.optimizer.name!r}; choose one of {list(OPTIMIZERS)}",
    )
    _check(
        cfg.dataset.name in DATASETS,
        "dataset.name",
        f"unknown dataset {cfg.dataset.name!r}; choose one of {list(DATASETS)}",
    )
    _check(cfg.optimizer.lr > 0, "optimizer.lr", f"must be > 0, got {cfg.optimizer.lr}")
    _check(
        cfg.optimizer.momentum >= 0,
        "optimizer.momentum",
        f"must be >= 0, got {cfg.optimizer.momentum}",
    )
    _check(cfg.trainer.epochs >= 1, "trainer.epochs", f"must be >= 1, got {cfg.trainer.epochs}")
    _check(
        cfg.trainer.batch_size >= 1,
        "trainer.batch_size",
        f"must be >= 1, got {cfg.trainer.batch_size}",
    )
    _check(
        cfg.trainer.steps_per_execution >= 1,
        "trainer.steps_per_execution",
        f"must be >= 1, got {cfg.trainer.steps_per_execution}",
    )
    _check(
        cfg.dataset.limit is None or cfg.dataset.limit >= 1,
        "dataset.limit",
        f"must be >= 1 or null, got {cfg.dataset.limit}",
    )
    _check(
        0 < cfg.dataset.val_split < 1,
        "dataset.val_split",
        f"must be between 0 and 1 (exclusive), got {cfg.dataset.val_split}",
    )
    _check(
        cfg.dataset.channels in (1, 3),
        "dataset.channels",
        f"must be 1 or 3, got {cfg.dataset.channels}",
    )
    _check(
        cfg.dataset.image_size >= spec.min_size,
        "dataset.image_size",
        f"{cfg.dataset.image_size} is below the minimum of {spec.min_size} for backbone {spec.name}",
    )
    _check(cfg.mlflow.samples >= 0, "mlflow.samples", f"must be >= 0, got {cfg.mlflow.samples}")
    _check(cfg.mlflow.top_k >= 1, "mlflow.top_k", f"must be >= 1, got {cfg.mlflow.top_k}")
    _check(bool(cfg.mlflow.experiment_name), "mlflow.experiment_name", "must not be empty")
    _check(
        cfg.metric in METRICS,
        "metric",
        f"unknown metric {cfg.metric!r}; choose one of {list(METRICS)}",
    )
    _check(cfg.seed >= 0, "seed", f"must be >= 0, got {cfg.seed}")


def compose(overrides: list[str] | None = None) -> DictConfig:
    """Compose and validate the configuration as the command line would (for tests and tools)."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = hydra_compose(config_name="config", overrides=list(overrides or []))
    validate(cfg)
    return cfg


def flatten(cfg: DictConfig) -> dict[str, object]:
    """The resolved configuration as ``{"optimizer.lr": 0.001, ...}``."""
    flat: dict[str, object] = {}

    def walk(node, prefix: str) -> None:
        for key, value in node.items():
            name = f"{prefix}{key}"
            if isinstance(value, dict):
                walk(value, f"{name}.")
            else:
                flat[name] = value

    walk(OmegaConf.to_container(cfg, resolve=True), "")
    return flat
