"""``python -m experiments.study [backbones=[a,b,...]] [overrides]``: the reference report's
whole study, then its table.

The backbones (``backbones=``, any rows of the backbone table; VGG16, Xception and
MobileNet by default), each with ``transfer`` and ``finetune``, on the reference report's
image folder (``data/animals``; the synthetic ``shapes`` when it is missing), plus the
custom CNN on Fashion-MNIST, all in a new MLflow experiment ``study-<date>-<time>``,
compared side by side at the end. Overrides apply to every run, except ``dataset.*``,
``backbone.*`` and ``phase.*``, which apply to the image sweep only.

The closing comparison prints one table per evaluation set (the image folder's, and
Fashion-MNIST's): runs scored on different images are never ranked together.
``seeds=N`` repeats every configuration with seeds 1 to N; the closing tables then
aggregate them (mean ± sd, min, max, and which configurations are indistinguishable from
the best). ``mlflow.register_as=<name>`` registers the image sweep's best run's model as
``<name>``, alias ``champion``, with a second comparison of that sweep's runs alone.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from experiments import models
from experiments.commands.cli_args import exit_on_error
from experiments.data.animals import DEFAULT_ROOT as ANIMALS
from experiments.errors import ConfigError

BACKBONES = ("vgg16", "xception", "mobilenet")  # the reference report's three
IMAGE_ONLY = ("dataset.", "backbone.", "phase.")
COMPARE_KEYS = ("mlflow.tracking_uri=", "mlflow.experiment_name=")

USAGE = """\
usage: python -m experiments.study [backbones=[a,b,...]] [seeds=N] [override ...]

The reference report's whole study: each backbone with phase=transfer and finetune on
data/animals (dataset=shapes when it is missing), the custom CNN on Fashion-MNIST, all in
a new MLflow experiment study-<date>-<time>, then one comparison table per evaluation set.

keys (default):
  backbones=[vgg16,xception,mobilenet]   rows of the backbone table to compare
  seeds=null                 N repeats every configuration with seeds 1..N (mean ± sd)
  mlflow.register_as=null    register the image sweep's best model under this name
  override ...               any training override (python -m experiments --help); dataset.*,
                             backbone.* and phase.* apply to the image sweep only

examples:
  python -m experiments.study backbones=[mobilenet] trainer.epochs=1 dataset.limit=200
  python -m experiments.study seeds=3 mlflow.register_as=animals

exit status: 0 every run and comparison succeeded, 1 one failed, 2 bad input"""


def split_backbones(overrides: list[str]) -> tuple[list[str], list[str]]:
    """The backbones named by ``backbones=[a,b]`` (or ``a,b``), and the other overrides."""
    chosen = [o for o in overrides if o.startswith("backbones=")]
    rest = [o for o in overrides if not o.startswith("backbones=")]
    if not chosen:
        return list(BACKBONES), rest
    names = [n.strip() for n in chosen[-1].split("=", 1)[1].strip("[]").split(",") if n.strip()]
    if not names:
        raise ConfigError("backbones", "name at least one backbone, e.g. backbones=[resnet50]")
    for name in names:
        models.spec(name)  # an unknown name fails here, listing the choices
    return names, rest


def commands(overrides: list[str], animals_present: bool, stamp: str) -> list[list[str]]:
    """The command lines of the study: image sweep, custom CNN, comparison (and, with
    ``mlflow.register_as``, the image sweep's comparison that registers its winner).

    Each study gets an MLflow experiment of its own (``study-<stamp>``), so its closing
    table holds its runs (two per backbone and the custom CNN's, times the seeds) and no
    earlier ones.
    """
    names, overrides = split_backbones(overrides)
    seeds, overrides = _take(overrides, "seeds=")
    register, overrides = _take(overrides, "mlflow.register_as=")
    if not any(o.startswith("mlflow.experiment_name=") for o in overrides):
        overrides = [*overrides, f"mlflow.experiment_name=study-{stamp}"]
    repeat = []
    if seeds is not None:
        repeat = [f"seed={','.join(str(s) for s in range(1, _count(seeds) + 1))}"]
    dataset = "animals" if animals_present else "shapes"
    shared = [o for o in overrides if not o.startswith(IMAGE_ONLY)]
    python = [sys.executable, "-m"]
    compare = [o for o in overrides if o.startswith(COMPARE_KEYS)]
    python_compare = [*python, "experiments.compare", *compare, "metric=test_accuracy"]
    register_best = []
    if register is not None:  # a winner within one evaluation set: the image sweep's
        register_best = [
            [
                *python_compare,
                f"filter=tags.dataset = '{dataset}'",
                f"register_as={register}",
                "output_dir=comparison-registered",
            ]
        ]
    custom = [*python, "experiments", *(["-m"] if repeat else []), "backbone=custom_cnn"]
    return [
        [
            *python,
            "experiments",
            "-m",
            f"backbone={','.join(names)}",
            "phase=transfer,finetune",
            f"dataset={dataset}",
            *repeat,
            *overrides,
        ],
        [*custom, "dataset=fashion_mnist", *repeat, *shared],
        python_compare,
        *register_best,
    ]


def _take(overrides: list[str], prefix: str) -> tuple[str | None, list[str]]:
    """The value of the ``prefix`` argument (the last one given), and the others."""
    values = [o.removeprefix(prefix) for o in overrides if o.startswith(prefix)]
    rest = [o for o in overrides if not o.startswith(prefix)]
    return (values[-1] if values else None), rest


def _count(seeds: str) -> int:
    try:
        count = int(seeds)
    except ValueError:
        count = 0
    if count < 1:
        raise SystemExit(f"error: seeds={seeds}: must be a number of seeds >= 1, e.g. seeds=3")
    return count


def main(argv: list[str] | None = None) -> None:
    overrides = sys.argv[1:] if argv is None else argv
    if any(arg in ("-h", "--help") for arg in overrides):
        print(USAGE)
        raise SystemExit(0)
    animals_present = Path(ANIMALS).is_dir()
    try:
        study = commands(overrides, animals_present, time.strftime("%Y%m%d-%H%M%S"))
    except ConfigError as exc:
        exit_on_error(exc)
    if not animals_present:
        print(
            f"No {ANIMALS}/ here: running the study on the synthetic dataset=shapes instead "
            "(put the reference report's images in data/animals/<class>/ to use them).",
            flush=True,
        )
    failed = 0
    for command in study:
        print("+ " + " ".join(command[1:]), flush=True)
        failed += subprocess.run(command).returncode != 0
    raise SystemExit(1 if failed else 0)


if __name__ == "__main__":
    main()
