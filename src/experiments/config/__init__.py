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

from experiments import models as backbones
from experiments.errors import ConfigError
from experiments.metrics import lower_is_better

CONF_DIR = Path(__file__).resolve().parents[1] / "conf"

PHASES = ("scratch", "transfer", "finetune")
OPTIMIZERS = ("adam", "sgd", "rmsprop")
DATASETS = ("fashion_mnist", "image_folder", "animals", "shapes")
STRATEGIES = ("default", "mirrored", "multi_worker")
PRECISIONS = ("auto", "float32", "mixed_bfloat16", "mixed_float16")
SCHEDULES = ("constant", "cosine")
METRICS = ("val_accuracy", "val_loss", "accuracy", "loss", "test_accuracy", "test_loss")
MODEL_URI_SCHEMES = ("runs:/", "models:/", "mlflow-artifacts:/")


@dataclass
class BackboneConfig:
    name: str = MISSING  # a row of experiments.models.registry
    weights: str | None = None  # imagenet | null (random) | a weights file | runs:/<id>/model
    dropout: float = 0.0  # dropout before the classifier of the head


@dataclass
class PhaseConfig:
    name: str = MISSING  # scratch | transfer | finetune
    unfreeze: str = "all"  # finetune: top layers of the base made trainable, or "all"
    init_from: str | None = None  # finetune: model URI of an earlier transfer run
    warmup_epochs: int = 0  # finetune without init_from: epochs training the head first
    warmup_lr: float = 1e-3  # learning rate of that head warm-up
    cache_features: bool = True  # head training: compute the frozen base's features once


@dataclass
class OptimizerConfig:
    name: str = MISSING  # adam | sgd | rmsprop
    lr: float = 1e-3
    momentum: float = 0.0  # sgd and rmsprop only
    nesterov: bool = False  # sgd only
    schedule: str = "constant"  # constant | cosine (to zero at the last step of each stage)
    warmup: float = 0.0  # cosine: fraction of the steps warming up linearly from lr/10


@dataclass
class AugmentConfig:
    flip: bool = False  # random horizontal flips
    rotation: float = 0.0  # random rotation, as a fraction of a full turn
    zoom: float = 0.0  # random zoom, as a fraction of the size
    contrast: float = 0.0  # random contrast change, as a fraction


@dataclass
class DatasetConfig:
    name: str = MISSING
    root: str | None = None  # where the files are; null = the dataset's usual place
    limit: int | None = None  # cap on training samples, for quick runs; null = all
    val_split: float = 0.1  # share held out for validation
    test_split: float = 0.0  # share held out for test, when the data has no test split
    image_size: int = 28  # height and width the model sees
    channels: int = 1  # 1 = grayscale, 3 = RGB (raised to 3 when the backbone needs it)
    classes: list[str] | None = None  # keep only these classes (names or indices); null = all
    per_class: int | None = None  # shapes: images generated per class
    augment: AugmentConfig = field(default_factory=AugmentConfig)


@dataclass
class EarlyStoppingConfig:
    patience: int | None = None  # epochs without a gain in `metric` before a stage stops
    min_delta: float = 0.0  # the smallest change of `metric` that counts as a gain


@dataclass
class TrainerConfig:
    epochs: int = 10
    batch_size: int = 32
    steps_per_execution: int = 1  # >1 runs several batches per call: less overhead on CPU
    deterministic: bool = True  # TensorFlow's op determinism: same seed, same result
    verbose: int = 1  # Keras' progress output: 0 silent, 1 progress bar, 2 one line per epoch
    strategy: str = "default"  # default | mirrored (all local GPUs) | multi_worker ($TF_CONFIG)
    threads: int | None = None  # TensorFlow's intra-op threads; null = cores / parallel jobs
    logical_cpus: int | None = None  # split the CPU into N devices (mirrored without GPUs)
    checkpoints: bool = True  # save best.keras and last.keras every epoch; logged at the end
    precision: str = "float32"  # auto | float32 | mixed_bfloat16 | mixed_float16 (Keras policy)
    resume: str | None = None  # a run id: continue that run from its last checkpoint
    restore_best: bool = True  # test, report and log the best epoch of `metric`, not the last
    early_stopping: EarlyStoppingConfig = field(default_factory=EarlyStoppingConfig)


@dataclass
class MlflowConfig:
    tracking_uri: str | None = None  # null = $MLFLOW_TRACKING_URI, else ./mlflow.db
    experiment_name: str = "experiments"
    run_name: str | None = None  # null = <backbone>-<phase>-<optimizer>-lr<lr>
    log_model: bool = True
    samples: int = 12  # test images drawn in the prediction grid
    top_k: int = 3  # probabilities kept per sample in the top-k table
    register_as: str | None = None  # sweeps: register the best run's model under this name


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


APPLICATION_DROPOUT = 0.2  # the head's dropout for backbones without a YAML file


def register() -> None:
    """The schema, and an option ``backbone=<name>`` for every row of the backbone table.

    A backbone with a recipe of its own (compact_cnn, custom_cnn) has a YAML file in
    ``conf/backbone/`` instead, which may set more than ``backbone.*``.
    """
    store = ConfigStore.instance()
    store.store(name="base_config", node=Config)
    for row in backbones.BACKBONES.values():
        if not (CONF_DIR / "backbone" / f"{row.name}.yaml").exists():
            weights = "imagenet" if row.imagenet else None
            node = BackboneConfig(name=row.name, weights=weights, dropout=APPLICATION_DROPOUT)
            store.store(group="backbone", name=row.name, node=node)
    # ${direction_of:${metric}}: what a sweeper does with the metric (conf/hparams_search/).
    OmegaConf.register_new_resolver("direction_of", direction_of, replace=True)


def direction_of(metric: str) -> str:
    return "minimize" if lower_is_better(metric) else "maximize"


register()


def is_model_uri(value: str | None) -> bool:
    return bool(value) and value.startswith(MODEL_URI_SCHEMES)


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


def _choice(value: str, choices: tuple[str, ...], key: str, what: str) -> tuple[bool, str, str]:
    return value in choices, key, f"unknown {what} {value!r}; choose one of {list(choices)}"


def validate(cfg: DictConfig) -> None:
    """Raise ConfigError naming the first invalid key of a composed configuration."""
    spec = backbones.spec(cfg.backbone.name)
    b, p, o, d, t, m = cfg.backbone, cfg.phase, cfg.optimizer, cfg.dataset, cfg.trainer, cfg.mlflow
    rules = [
        _choice(p.name, PHASES, "phase.name", "phase"),
        _choice(o.name, OPTIMIZERS, "optimizer.name", "optimizer"),
        _choice(d.name, DATASETS, "dataset.name", "dataset"),
        _choice(cfg.metric, METRICS, "metric", "metric"),
        _choice(t.strategy, STRATEGIES, "trainer.strategy", "strategy"),
        _choice(t.precision, PRECISIONS, "trainer.precision", "precision"),
        _choice(o.schedule, SCHEDULES, "optimizer.schedule", "schedule"),
        (0 <= o.warmup < 1, "optimizer.warmup", f"must be in [0, 1), got {o.warmup}"),
        (t.threads is None or t.threads >= 1, "trainer.threads", "must be >= 1 or null"),
        (t.logical_cpus is None or t.logical_cpus >= 1, "trainer.logical_cpus", "must be >= 1"),
        (o.lr > 0, "optimizer.lr", f"must be > 0, got {o.lr}"),
        (o.momentum >= 0, "optimizer.momentum", f"must be >= 0, got {o.momentum}"),
        (t.epochs >= 1, "trainer.epochs", f"must be >= 1, got {t.epochs}"),
        (t.batch_size >= 1, "trainer.batch_size", f"must be >= 1, got {t.batch_size}"),
        (t.steps_per_execution >= 1, "trainer.steps_per_execution", "must be >= 1"),
        (
            t.early_stopping.patience is None or t.early_stopping.patience >= 1,
            "trainer.early_stopping.patience",
            f"must be >= 1 or null, got {t.early_stopping.patience}",
        ),
        (
            t.early_stopping.min_delta >= 0,
            "trainer.early_stopping.min_delta",
            f"must be >= 0, got {t.early_stopping.min_delta}",
        ),
        (d.limit is None or d.limit >= 1, "dataset.limit", f"must be >= 1 or null, got {d.limit}"),
        (0 < d.val_split < 1, "dataset.val_split", f"must be in (0, 1), got {d.val_split}"),
        (0 <= d.test_split < 1, "dataset.test_split", f"must be in [0, 1), got {d.test_split}"),
        (
            d.val_split + d.test_split < 1,
            "dataset.test_split",
            "val_split + test_split must be < 1",
        ),
        (d.channels in (1, 3), "dataset.channels", f"must be 1 or 3, got {d.channels}"),
        (
            d.image_size >= spec.min_size,
            "dataset.image_size",
            f"{d.image_size} is below the minimum of {spec.min_size} for backbone {spec.name}; "
            f"set dataset.image_size={spec.min_size} or more",
        ),
        (0 <= b.dropout < 1, "backbone.dropout", f"must be in [0, 1), got {b.dropout}"),
        (
            b.weights != "imagenet" or spec.imagenet,
            "backbone.weights",
            f"{spec.name} has no ImageNet weights; use null, a weights file or a model URI",
        ),
        (p.warmup_epochs >= 0, "phase.warmup_epochs", f"must be >= 0, got {p.warmup_epochs}"),
        (p.warmup_lr > 0, "phase.warmup_lr", f"must be > 0, got {p.warmup_lr}"),
        (
            p.init_from is None or p.name == "finetune",
            "phase.init_from",
            "only phase=finetune starts from an earlier run's model",
        ),
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
        (m.samples >= 0, "mlflow.samples", f"must be >= 0, got {m.samples}"),
        (m.top_k >= 1, "mlflow.top_k", f"must be >= 1, got {m.top_k}"),
        (bool(m.experiment_name), "mlflow.experiment_name", "must not be empty"),
        (cfg.seed >= 0, "seed", f"must be >= 0, got {cfg.seed}"),
    ]
    for ok, key, message in rules:
        if not ok:
            raise ConfigError(key, message)
    unfreeze_count(p.unfreeze)
    _check_weights(b.weights)


def _check_weights(weights: str | None) -> None:
    if weights in (None, "imagenet") or is_model_uri(weights):
        return
    if not Path(weights).expanduser().is_file():
        raise ConfigError(
            "backbone.weights",
            f"{weights} is not a file; use imagenet, null, a weights file or runs:/<run_id>/model",
        )


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
    from experiments.tracking import redact

    return {k: redact(v) if isinstance(v, str) else v for k, v in flat.items()}
