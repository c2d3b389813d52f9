"""Median pruning against no pruning on a learning-rate search (issue 29's goal).

    python benchmarks/search_pruning.py [--trials 20] [--limit 4000] [--epochs 8] [--write]
    python benchmarks/search_pruning.py --pruners none median \
        '{_target_:optuna.pruners.MedianPruner,n_startup_trials:4}'   # other settings too

Two searches through the real command line, each into a fresh store: hparams_search=optuna
over the learning rate alone (log scale, 1e-5 to 1e-1; batch size and dropout fixed) of
the compact CNN on a Fashion-MNIST subset, joblib with 2 jobs, the same seed (so the same
first 10 trials); one with hydra.sweeper.pruner=median, one with none. Printed: wall
times, best validation accuracy, trials completed, pruned and failed, and the ratios
(``--pruners``: other pruners too, each against the first).
Goal: median pruning within 0.5 point of the best val_accuracy in at most 0.6x the time.
"""

from __future__ import annotations

import argparse
import re
import tempfile
from pathlib import Path

from common import cpu_kind, machine, run
from results import write_part

COUNTS = re.compile(r"ran (\d+) trials: (\d+) completed, (\d+) pruned, (\d+) failed")
BEST = re.compile(r"Best trial: #(\d+) val_accuracy=([0-9.]+) \(optimizer.lr=([0-9.e+-]+)\)")


def search(pruner: str, trials: int, limit: int, epochs: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        seconds, result = run(
            [
                "-m",
                "experiments",
                "-m",
                "hparams_search=optuna",
                "hydra/launcher=joblib",
                "hydra.launcher.n_jobs=2",
                "hydra.sweeper.n_jobs=2",
                f"hydra.sweeper.n_trials={trials}",
                f"hydra.sweeper.pruner={pruner}",
                "optimizer.lr=tag(log, interval(1e-5, 1e-1))",
                "trainer.batch_size=64",
                "backbone.dropout=0.25",
                f"dataset.limit={limit}",
                f"trainer.epochs={epochs}",
                "trainer.verbose=0",
                "cost=quick",
                "interpretation=off",
                "mlflow.samples=0",
                "mlflow.log_model=false",
                f"mlflow.tracking_uri=sqlite:///{tmp}/mlflow.db",
            ],
            Path(tmp),
            check=False,  # a diverging trial makes the command exit 1; the search still ends
        )
        epochs = epochs_trained(f"sqlite:///{tmp}/mlflow.db")
    counts, best = COUNTS.search(result.stdout), BEST.search(result.stdout)
    if counts is None or best is None:
        raise SystemExit(f"search failed:\n{result.stdout[-2000:]}\n{result.stderr[-3000:]}")
    ran, done, pruned, failed = (int(n) for n in counts.groups())
    return {
        "pruner": pruner,
        "seconds": seconds,
        "best": float(best[2]),
        "best_lr": best[3],
        "counts": f"{done} completed, {pruned} pruned, {failed} failed",
        "epochs": epochs,
    }


def epochs_trained(uri: str) -> int:
    """The epochs every trial of the search trained, from its runs' logged val_accuracy."""
    import mlflow

    client = mlflow.MlflowClient(uri)
    runs = client.search_runs([e.experiment_id for e in client.search_experiments()])
    trials = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
    return sum(len(client.get_metric_history(r.info.run_id, "val_accuracy")) for r in trials)


def _against(base: dict, row: dict) -> str:
    """``row``'s time, best accuracy and epochs against those of ``base`` (no pruning)."""
    ratio = row["seconds"] / base["seconds"]
    gap = 100 * (base["best"] - row["best"])
    verdict = "met" if ratio <= 0.6 and gap <= 0.5 else "missed"
    return (
        f"{row['pruner']}/{base['pruner']} wall time: {ratio:.2f}; best val_accuracy "
        f"{gap:+.2f} points below {base['pruner']}'s (goal: <= 0.6 and within 0.5 point: "
        f"{verdict}); epochs trained: {row['epochs'] / base['epochs']:.2f} of "
        f"{base['pruner']}'s, the least the time could be with nothing but epochs to pay"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--limit", type=int, default=4000)
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--write", action="store_true", help="write the part in RESULTS.md")
    parser.add_argument(
        "--pruners", nargs="+", default=["none", "median"], help="each against the first"
    )
    args = parser.parse_args()
    print(f"machine: {machine()}", flush=True)
    rows = []
    for pruner in args.pruners:
        rows.append(search(pruner, args.trials, args.limit, args.epochs))
        print(rows[-1], flush=True)
    table = [
        "| pruner | wall time (s) | best val_accuracy | its lr | trials | epochs trained |",
        "|---|---:|---:|---:|---|---:|",
        *(
            f"| {r['pruner']} | {r['seconds']:.1f} | {r['best']:.4f} | {r['best_lr']} | "
            f"{r['counts']} | {r['epochs']} |"
            for r in rows
        ),
    ]
    summary = "\n".join(_against(rows[0], row) for row in rows[1:])
    print("\n".join(table) + "\n" + summary)
    if args.write:
        text = (
            f"### Pruning a learning-rate search\n\nMachine: {machine()}\n\n"
            f"{args.trials} trials each, joblib with 2 jobs, compact CNN, Fashion-MNIST "
            f"{args.limit} training images, {args.epochs} epochs, the learning rate alone "
            "(log scale, 1e-5 to 1e-1), seed 42; median: Optuna's MedianPruner defaults (from "
            "the 6th trial, at every epoch).\n\n" + "\n".join(table) + f"\n\n{summary}\n"
        )
        command = "python benchmarks/search_pruning.py " + " ".join(
            f"--{k} {v}" for k, v in vars(args).items() if k not in ("write", "pruners")
        )
        if args.pruners != ["none", "median"]:
            command += " --pruners " + " ".join(f"'{p}'" for p in args.pruners)
        write_part(cpu_kind(), "search", command + " --write", text)


if __name__ == "__main__":
    main()
