"""A ``phase=transfer`` epoch of one backbone per keras.applications family, on this machine.

    python benchmarks/transfer_families.py                 # the first row of every family
    python benchmarks/transfer_families.py resnet50 convnext_tiny

Each backbone in turn, through the real command line: ``dataset=shapes`` at 96x96 (100
images, 70 for training), random weights, batch 32, two epochs with the frozen base run
live (``phase.cache_features=false``, as augmentation forces). The epoch time is the
second epoch's ``epoch_time_s`` (training and validation; the first epoch traces the graph).
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from common import machine  # noqa: E402
from transfer_cache import transfer_epochs  # noqa: E402

from experiments.models import spec  # noqa: E402
from experiments.models.registry import first_of_each_family  # noqa: E402


def main(names: list[str]) -> None:
    print(machine())
    print("| backbone | epoch (s) | first epoch (s) | command wall (s) |")
    print("|---|---:|---:|---:|")
    for name in names:
        r = transfer_epochs(name, cached=False, epochs=2, per_class=25, image_size=96)
        first, second = r["times"][0], r["times"][-1]
        print(f"| {name} | {second:.2f} | {first:.2f} | {r['wall_s']:.1f} |", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:] or [name for name in first_of_each_family() if spec(name).imagenet])
