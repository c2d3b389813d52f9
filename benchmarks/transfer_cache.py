"""Part 3: transfer learning is cheap where it can be.

(a) ``phase=transfer`` through the real command line, with the frozen base's features
computed once (``phase.cache_features=true``, the default) and without (every epoch runs
the images through the base), on the same data, backbone and batch size. Each epoch's
wall time is the run's ``epoch_time_s`` metric (training and validation, not the
checkpoint saved after it); the first epoch (graph tracing) is left
out of the median. Goal: cached head epochs at least 10x faster, same accuracy within noise.
(b) Images per second of each application's frozen base (the feature pass) at 150x150.
Random weights (``backbone.weights=null``): speed does not depend on the weights.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

from common import median, run

GOAL = 10.0


def transfer_epochs(
    backbone: str, cached: bool, epochs: int, per_class: int, image_size: int = 150
) -> dict:
    import mlflow

    with tempfile.TemporaryDirectory() as tmp:
        store = Path(tmp) / "mlflow.db"
        wall, _ = run(
            [
                "-m",
                "experiments",
                f"backbone={backbone}",
                "backbone.weights=null",
                "phase=transfer",
                f"phase.cache_features={str(cached).lower()}",
                "dataset=shapes",
                f"dataset.image_size={image_size}",
                f"dataset.per_class={per_class}",
                f"dataset.root={Path(tmp) / 'shapes'}",
                f"trainer.epochs={epochs}",
                "trainer.batch_size=32",
                "trainer.verbose=0",
                "mlflow.log_model=false",
                f"mlflow.tracking_uri=sqlite:///{store}",
            ],
            Path(tmp),
        )
        client = mlflow.MlflowClient(f"sqlite:///{store}")
        experiment = client.get_experiment_by_name("experiments")
        found = client.search_runs([experiment.experiment_id])[0]
        times = [
            m.value
            for m in sorted(
                client.get_metric_history(found.info.run_id, "epoch_time_s"), key=lambda m: m.step
            )
        ]
    return {
        "epoch_s": median(times[1:] if len(times) > 1 else times),
        "times": times,
        "train_time_s": found.data.metrics["train_time_s"],
        "val_accuracy": found.data.metrics["best_val_accuracy"],
        "test_accuracy": found.data.metrics["test_accuracy"],
        "train_size": int(found.data.params["data.train_size"]),
        "wall_s": wall,
    }


def feature_pass(names: tuple[str, ...], count: int, size: int = 150) -> dict[str, float]:
    """Images per second through each backbone's preprocessing and frozen base."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
    import keras
    import numpy as np

    from experiments.models import preprocessing, spec
    from experiments.models.weights import construct

    rates = {}
    images = np.random.default_rng(0).integers(0, 256, (count, size, size, 3)).astype("float32")
    for name in names:
        row = spec(name)
        extractor = keras.Sequential(
            [
                keras.Input((size, size, 3)),
                *preprocessing.layers(row.preprocessing),
                construct(row, (size, size, 3), None),
            ]
        )
        extractor.predict(images[:64], batch_size=64, verbose=0)  # trace the graph first
        started = time.perf_counter()
        extractor.predict(images, batch_size=64, verbose=0)
        rates[name] = count / (time.perf_counter() - started)
        keras.backend.clear_session()
    return rates


def measure(quick: bool = False) -> dict:
    epochs, per_class = (3, 30) if quick else (4, 250)
    cached = transfer_epochs("mobilenet", True, epochs, per_class)
    live = transfer_epochs("mobilenet", False, epochs, per_class)
    rates = feature_pass(("mobilenet", "xception", "vgg16"), 64 if quick else 256)
    return {"cached": cached, "live": live, "rates": rates, "epochs": epochs}


def section(r: dict) -> str:
    cached, live = r["cached"], r["live"]
    speedup = live["epoch_s"] / cached["epoch_s"]
    verdict = "met" if speedup >= GOAL else f"missed: {speedup:.1f}x against {GOAL:.0f}x"
    lines = [
        "## 3. Transfer learning is cheap where it can be",
        "",
        f"`backbone=mobilenet backbone.weights=null phase=transfer dataset=shapes "
        f"dataset.image_size=150`, {cached['train_size']} training images, batch 32, "
        f"{r['epochs']} epochs; epoch time = the run's `epoch_time_s` (training and "
        "validation, not the checkpoint saved after it), median of the epochs after the first.",
        "",
        "| head epochs | median epoch (s) | epochs (s) | train_time_s | best val acc | test acc |",
        "|---|---:|---|---:|---:|---:|",
    ]
    for name, row in (("on cached features", cached), ("through the frozen base", live)):
        times = ", ".join(f"{t:.3f}" for t in row["times"])
        lines.append(
            f"| {name} | {row['epoch_s']:.3f} | {times} | {row['train_time_s']:.1f} | "
            f"{row['val_accuracy']:.3f} | {row['test_accuracy']:.3f} |"
        )
    lines += [
        "",
        f"Cached head epochs are **{speedup:.0f}x** faster (goal: at least {GOAL:.0f}x): "
        f"{verdict}. `train_time_s` of the cached run includes the one feature pass. With a "
        "random base the head stays near chance either way (4 classes: 0.25); the accuracies "
        "agree within the noise of "
        f"{cached['train_size']} images.",
        "",
        "Frozen-base feature pass (preprocessing and base, batch 64, random weights) at 150x150:",
        "",
        "| backbone | images/s |",
        "|---|---:|",
        *(f"| {name} | {rate:.1f} |" for name, rate in r["rates"].items()),
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    print(section(measure(quick="--quick" in sys.argv)))
