"""The configuration schema, registered in Hydra's ConfigStore.

The dataclasses make Hydra reject an unknown key or a value of the wrong type while it
composes; ``rules`` and each registry's checks then judge the values. Nothing here
imports TensorFlow, so a bad command line fails in well under a second.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, DictConfig, OmegaConf

from experiments.metrics import lower_is_better
from experiments.uris import redact

CONF_DIR = Path(__file__).resolve().parents[1] / "conf"


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
    lr: float | int | str = 1e-3  # used as given (never rescaled); "find": the LR finder's pick
    momentum: float = 0.0  # sgd and rmsprop only
    nesterov: bool = False  # sgd only
    schedule: str = "constant"  # constant | cosine (to zero at the last step of each stage)
    warmup: float = 0.0  # cosine: fraction of the steps warming up linearly from lr/10


@dataclass
class LrFindConfig:
    min_lr: float = 1e-7  # the ramp's first rate
    max_lr: float = 10.0  # the ramp's last rate (it stops earlier if the loss diverges)
    steps: int = 100  # training batches in the ramp, the rate growing exponentially
    smoothing: float = 0.9  # weight of the past in the loss's moving average
    diverge: float = 4.0  # stop once the smoothed loss exceeds this many times its minimum
    rule: str = "steepest"  # steepest (descent of the smoothed loss) | minimum (its rate / 10)


@dataclass
class AugmentConfig:
    flip: bool = False  # random horizontal flips
    rotation: float = 0.0  # random rotation, as a fraction of a full turn
    zoom: float = 0.0  # random zoom, as a fraction of the size
    contrast: float = 0.0  # random contrast change, as a fraction


@dataclass
class DatasetConfig:
    name: str = MISSING  # fashion_mnist | animals | image_folder | shapes (the dataset table)
    root: str | None = None  # where the files are; null = the dataset's usual place
    limit: int | None = None  # cap on training samples, for quick runs; null = all
    val_split: float = 0.1  # share held out for validation
    test_split: float = 0.0  # share held out for test, when the data has no test split
    image_size: int = 28  # height and width the model sees
    channels: int = 1  # 1 = grayscale, 3 = RGB (raised to 3 when the backbone needs it)
    classes: list[str] | None = None  # keep only these classes (names or indices); null = all
    per_class: int | None = None  # shapes: images generated per class
    cache: bool = True  # image folders: decode once into a cache on disk and stream from it
    cache_dir: str = "data/.cache"  # image folders: where the image and feature caches live
    augment: AugmentConfig = field(default_factory=AugmentConfig)


@dataclass
class EarlyStoppingConfig:
    patience: int | None = None  # epochs without a gain in `metric` before a stage stops
    min_delta: float = 0.0  # the smallest change of `metric` that counts as a gain


@dataclass
class TrainerConfig:
    epochs: int = 10  # epochs to train (finetune: the epochs after its head warm-up)
    batch_size: int = 32  # the global batch, split over the replicas of a strategy
    steps_per_execution: int = 1  # >1 runs several batches per call: less overhead on CPU
    deterministic: bool = True  # TensorFlow's op determinism: same seed, same result
    verbose: int = 1  # Keras' progress output: 0 silent, 1 progress bar, 2 one line per epoch
    strategy: str = "default"  # default | mirrored (all local GPUs) | multi_worker ($TF_CONFIG)
    threads: int | None = None  # TensorFlow's intra-op threads; null = cores / parallel jobs
    logical_cpus: int | None = None  # split the CPU into N devices (mirrored without GPUs)
    checkpoints: bool = True  # save best.keras and last.keras every epoch; logged at the end
    precision: str = "float32"  # auto | float32 | mixed_bfloat16 | mixed_float16 (Keras policy)
    resume: str | None = None  # a run id: continue that run from its last checkpoint; sweep
    restore_best: bool = True  # test, report and log the best epoch of `metric`, not the last
    early_stopping: EarlyStoppingConfig = field(default_factory=EarlyStoppingConfig)


@dataclass
class MlflowConfig:
    tracking_uri: str | None = None  # null = $MLFLOW_TRACKING_URI, else ./mlflow.db
    experiment_name: str = "experiments"  # the MLflow experiment the run goes to
    run_name: str | None = None  # null = <backbone>-<phase>-<optimizer>-lr<lr>
    log_model: bool = True  # log the Keras model of the best epoch as the artifact "model"
    samples: int = 12  # test images drawn in the prediction grid
    top_k: int = 3  # probabilities kept per sample in the top-k table
    register_as: str | None = None  # sweeps: register the best run's model under this name
    outage_wait_s: float = 30.0  # at a run's end, wait this long for a tracking server gone away


@dataclass
class CostConfig:
    measure: bool = True  # log the model's size, multiply-adds, latency and throughput
    warmup_calls: int = 10  # untimed batch-1 calls before the timed ones
    latency_calls: int = 50  # timed batch-1 calls: the latency is their median
    throughput_batch: int = 64  # images per call when timing throughput
    throughput_seconds: float = 1.0  # time batches for at least this long (and 3 calls)


@dataclass
class InterpretationConfig:
    confused_pairs: int = 5  # the most frequent (true, predicted) confusions; 0 = none
    top_losses: int = 8  # the test images with the highest loss, with Grad-CAM maps
    per_class: int = 2  # correct test images per class, with their maps
    layer: str | None = None  # the layer Grad-CAM maps; None = the base's last spatial map


@dataclass
class Config:
    backbone: BackboneConfig = field(default_factory=BackboneConfig)
    phase: PhaseConfig = field(default_factory=PhaseConfig)
    optimizer: OptimizerConfig = field(default_factory=OptimizerConfig)
    dataset: DatasetConfig = field(default_factory=DatasetConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    mlflow: MlflowConfig = field(default_factory=MlflowConfig)
    cost: CostConfig = field(default_factory=CostConfig)
    interpretation: InterpretationConfig = field(default_factory=InterpretationConfig)
    lr_find: LrFindConfig = field(default_factory=LrFindConfig)
    seed: int = 42  # seeds the split, the weights and the shuffling
    metric: str = "val_accuracy"  # picks the best epoch, ranks comparisons, returned to sweepers


def register() -> None:
    """The schema as ``base_config`` in Hydra's ConfigStore, and the ``direction_of`` resolver."""
    ConfigStore.instance().store(name="base_config", node=Config)
    # ${direction_of:${metric}}: what a sweeper does with the metric (conf/hparams_search/).
    OmegaConf.register_new_resolver("direction_of", direction_of, replace=True)


def register_options(group: str, nodes: dict[str, object]) -> None:
    """``<group>=<name>`` for each ``nodes[name]`` (a schema instance) without a YAML file.

    A registry's row is an option by itself; a YAML file in ``conf/<group>/``, where there
    is one, gives that option's defaults (and the comments users read) instead.
    """
    store = ConfigStore.instance()
    for name, node in nodes.items():
        if not (CONF_DIR / group / f"{name}.yaml").exists():
            store.store(group=group, name=name, node=node)


def direction_of(metric: str) -> str:
    return "minimize" if lower_is_better(metric) else "maximize"


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
    return {k: redact(v) if isinstance(v, str) else v for k, v in flat.items()}
