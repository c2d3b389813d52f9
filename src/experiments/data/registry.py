"""The dataset table: every ``dataset=<name>`` option, the keys it reads, and the rules.

Adding a dataset is a row here and its module in this package, whose ``load(cfg, seed)``
returns all its images as ``Splits``; ``conf/dataset/<name>.yaml`` may give it defaults
other than the schema's (a test checks the table against ``conf/dataset/``). ``load``
below applies what every dataset shares: the RGB a backbone needs, ``dataset.classes``
and ``dataset.limit``.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass

from omegaconf import DictConfig, OmegaConf

from experiments.config.rules import first_broken, one_of, refuse_unused
from experiments.config.schema import DatasetConfig, register_options
from experiments.data.splits import Splits, keep_classes, limit_training
from experiments.errors import DataError


@dataclass(frozen=True)
class DatasetSpec:
    name: str  # the Hydra option: dataset=<name>
    module: str  # its module in experiments.data, with load(cfg, seed) -> Splits
    keys: tuple[str, ...] = ()  # the keys of its own it reads, beyond every dataset's


FOLDER_KEYS = ("test_split", "cache", "cache_dir")  # what every image folder reads

DATASETS = {
    row.name: row
    for row in (
        DatasetSpec("fashion_mnist", "fashion_mnist"),  # its own test set: no test_split
        DatasetSpec("image_folder", "image_folder", keys=FOLDER_KEYS),
        DatasetSpec("animals", "animals", keys=FOLDER_KEYS),
        DatasetSpec("shapes", "shapes", keys=(*FOLDER_KEYS, "per_class")),
    )
}


def register() -> None:
    """``dataset=<name>`` for every row without a YAML file of its own."""
    register_options("dataset", {name: DatasetConfig(name=name) for name in DATASETS})


def check(d: DictConfig, swept: bool = False) -> None:
    """The dataset rules, in one place: ranges, and no key the chosen dataset ignores.

    ``val_split`` must be above 0 for every dataset: the best epoch is picked on the
    validation set, so a run without one has nothing to choose by. (A folder with its
    own ``val/`` split does not read it.)
    """
    first_broken([one_of(d.name, DATASETS, "dataset.name", "dataset")])
    first_broken(
        [
            (
                d.limit is None or d.limit >= 1,
                "dataset.limit",
                f"must be >= 1 or null, got {d.limit}",
            ),
            (0 < d.val_split < 1, "dataset.val_split", f"must be in (0, 1), got {d.val_split}"),
            (0 <= d.test_split < 1, "dataset.test_split", f"must be in [0, 1), got {d.test_split}"),
            (
                d.val_split + d.test_split < 1,
                "dataset.test_split",
                "val_split + test_split must be < 1",
            ),
            (d.channels in (1, 3), "dataset.channels", f"must be 1 or 3, got {d.channels}"),
            (d.image_size >= 1, "dataset.image_size", f"must be >= 1, got {d.image_size}"),
            (
                "per_class" not in DATASETS[d.name].keys or (d.per_class or 0) >= 1,
                "dataset.per_class",
                f"must be >= 1, got {d.per_class}",
            ),
        ]
    )
    uses = {name: row.keys for name, row in DATASETS.items()}
    refuse_unused(d, "dataset", uses, DatasetConfig(name=d.name), swept)


def load(dataset_cfg, seed: int, channels: int | None = None) -> Splits:
    """Load dataset ``dataset_cfg.name``, split with ``seed``.

    ``channels`` overrides ``dataset.channels`` (a backbone that needs RGB gets RGB), and
    ``dataset.classes`` keeps only the named classes, relabelled in the order given.
    """
    check(dataset_cfg, swept=True)  # the whole configuration was judged before
    module = importlib.import_module(f"experiments.data.{DATASETS[dataset_cfg.name].module}")
    if channels is not None and channels != dataset_cfg.channels:
        dataset_cfg = OmegaConf.merge(dataset_cfg, {"channels": channels})
    splits = module.load(dataset_cfg, seed)
    if dataset_cfg.classes:  # the classes first: dataset.limit counts the kept classes' images
        splits = keep_classes(splits, list(dataset_cfg.classes))
    splits = limit_training(splits, dataset_cfg.limit, dataset_cfg.val_split, seed)
    _check_not_empty(splits, dataset_cfg.name)
    return splits


def _check_not_empty(splits: Splits, name: str) -> None:
    """Every split needs images: an empty one fails only after training, or silently."""
    sizes = {part: len(getattr(splits, f"y_{part}")) for part in ("train", "val", "test")}
    empty = [part for part, size in sizes.items() if size == 0]
    if empty:
        raise DataError(
            f"dataset={name}: the {' and '.join(empty)} split is empty ({sizes}); add images, "
            "raise dataset.val_split / dataset.test_split, or provide val/ and test/ folders"
        )
