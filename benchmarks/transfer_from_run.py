"""Does a base pretrained in your own run beat training from scratch? Over seeds, with intervals.

The manual's recipe (docs/how-to/transfer-from-run.md): the reference network pretrained on
five Fashion-MNIST classes (12,000 images, 3 epochs), then trained on 40 images of the five
others for 15 epochs, with that base frozen (``phase=transfer``) and from scratch, for each
seed. Prints each seed's test accuracies, the means, and the 95% t interval of the paired
difference (transfer minus scratch). A single seed is not evidence: the difference changes
sign from one seed to the next.

    python benchmarks/transfer_from_run.py [--seeds 5]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile

from common import machine

PRETRAIN = ["dataset.classes=[0,2,4,6,8]", "dataset.limit=12000", "trainer.epochs=3"]
TARGET = ["dataset.classes=[1,3,5,7,9]", "dataset.limit=40", "trainer.epochs=15"]
QUIET = ["trainer.verbose=0", "cost=quick", "interpretation=off", "mlflow.samples=0"]


def accuracies(seeds: int) -> dict[str, list[float]]:
    import mlflow

    from experiments.training import train
    from experiments.training.settings import compose

    with tempfile.TemporaryDirectory() as tmp:
        common = [f"mlflow.tracking_uri=sqlite:///{tmp}/mlflow.db", "backbone=custom_cnn", *QUIET]
        train.run(compose([*common, *PRETRAIN, "mlflow.run_name=pretrain"]))
        pretrain = mlflow.search_runs(
            experiment_names=["experiments"],
            filter_string="run_name = 'pretrain'",
            output_format="list",
        )[0]
        weights = f"backbone.weights=runs:/{pretrain.info.run_id}/model"
        result = {"transfer": [], "scratch": []}
        for seed in range(1, seeds + 1):
            for phase, extra in (("transfer", [weights]), ("scratch", [])):
                overrides = [*common, *TARGET, f"phase={phase}", f"seed={seed}", *extra]
                train.run(compose([*overrides, "mlflow.log_model=false"]))
                run = mlflow.search_runs(
                    experiment_names=["experiments"],
                    output_format="list",
                    max_results=1,
                    order_by=["attributes.start_time DESC"],
                )[0]
                result[phase].append(run.data.metrics["test_accuracy"])
    return result


def main() -> None:
    from scipy import stats

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    seeds = parser.parse_args().seeds
    result = accuracies(seeds)
    print(machine())
    for seed, (t, s) in enumerate(zip(result["transfer"], result["scratch"], strict=True), start=1):
        print(f"seed {seed}: transfer {t:.2%}, scratch {s:.2%}")
    diffs = [t - s for t, s in zip(result["transfer"], result["scratch"], strict=True)]
    mean, sd = statistics.mean(diffs), statistics.stdev(diffs)
    half = stats.t.ppf(0.975, len(diffs) - 1) * sd / len(diffs) ** 0.5
    for phase, values in result.items():
        print(f"{phase}: mean {statistics.mean(values):.2%} ± {statistics.stdev(values):.2%} (sd)")
    print(f"transfer - scratch: {mean:+.2%}, 95% CI [{mean - half:+.2%}, {mean + half:+.2%}]")


if __name__ == "__main__":
    main()
