"""Median pruning against no pruning on a learning-rate search (issue 29's goal).

    python benchmarks/search_pruning.py [--trials 20] [--limit 4000] [--epochs 8] [--write]
    python benchmarks/search_pruning.py --seeds 1 2 3               # several seeds, alternated
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

from common import cpu_kind, machine, median, run
from results import write_part

COUNTS = re.compile(r"ran (\d+) trials: (\d+) completed, (\d+) pruned, (\d+) failed")
BEST = re.compile(r"Best trial: #(\d+) val_accuracy=([0-9.]+) \(optimizer.lr=([0-9.e+-]+)\)")


def search(pruner: str, trials: int, limit: int, epochs: int, seed: int = 42) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        seconds, result = run(
            [
                "-m",
                "experiments",
                "-m",
                "hparams_search=optuna",
                f"seed={seed}",  # the sampler's, and each trial's split, weights and shuffling
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
        "seed": seed,
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
    ratio, gap = _ratio(base, row), _gap(base, row)
    verdict = "met" if ratio <= 0.6 and gap <= 0.5 else "missed"
    return (
        f"seed {row['seed']}, {row['pruner']}/{base['pruner']} wall time: {ratio:.2f}; best "
        f"val_accuracy {gap:+.2f} points below {base['pruner']}'s (goal: <= 0.6 and within 0.5 "
        f"point: {verdict}); epochs trained: {row['epochs'] / base['epochs']:.2f} of "
        f"{base['pruner']}'s, the least the time could be with nothing but epochs to pay"
    )


def _ratio(base: dict, row: dict) -> float:
    return row["seconds"] / base["seconds"]


def _gap(base: dict, row: dict) -> float:
    return 100 * (base["best"] - row["best"])


def measure(args) -> list[dict]:
    """Every pruner on every seed; the order alternates from one seed to the next."""
    rows = []
    for i, seed in enumerate(args.seeds):
        for pruner in args.pruners if i % 2 == 0 else list(reversed(args.pruners)):
            rows.append(search(pruner, args.trials, args.limit, args.epochs, seed))
            print(rows[-1], flush=True)
    return rows


def summarise(rows: list[dict], pruners: list[str]) -> str:
    """Each pruner against the first, seed by seed, then over the seeds (median, worst)."""
    base = {r["seed"]: r for r in rows if r["pruner"] == pruners[0]}
    lines = [_against(base[r["seed"]], r) for r in rows if r["pruner"] != pruners[0]]
    if len(base) > 1:
        for pruner in pruners[1:]:
            mine = [r for r in rows if r["pruner"] == pruner]
            ratios = [_ratio(base[r["seed"]], r) for r in mine]
            gaps = [_gap(base[r["seed"]], r) for r in mine]
            lines.append(
                f"over seeds {', '.join(str(r['seed']) for r in mine)}, {pruner}: wall time "
                f"median {median(ratios):.2f} (each {', '.join(f'{x:.2f}' for x in ratios)}); "
                f"best val_accuracy at worst {max(gaps):+.2f} points below {pruners[0]}'s"
            )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--limit", type=int, default=4000)
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument(
        "--seeds", type=int, nargs="+", default=[42], help="the sampler's and the trials'"
    )
    parser.add_argument("--write", action="store_true", help="write the part in RESULTS.md")
    parser.add_argument(
        "--pruners", nargs="+", default=["none", "median"], help="each against the first"
    )
    args = parser.parse_args()
    print(f"machine: {machine()}", flush=True)
    rows = measure(args)
    table = [
        "| seed | pruner | wall time (s) | best val_accuracy | its lr | trials | epochs trained |",
        "|---:|---|---:|---:|---:|---|---:|",
        *(
            f"| {r['seed']} | {r['pruner']} | {r['seconds']:.1f} | {r['best']:.4f} | "
            f"{r['best_lr']} | {r['counts']} | {r['epochs']} |"
            for r in rows
        ),
    ]
    summary = summarise(rows, args.pruners)
    print("\n".join(table) + "\n" + summary)
    if args.write:
        text = (
            f"### Pruning a learning-rate search\n\nMachine: {machine()}\n\n"
            f"{args.trials} trials each, joblib with 2 jobs, compact CNN, Fashion-MNIST "
            f"{args.limit} training images, {args.epochs} epochs, the learning rate alone "
            f"(log scale, 1e-5 to 1e-1), seeds {', '.join(map(str, args.seeds))} (the order "
            "of the pruners alternates from seed to seed); median: MedianPruner judging once 4 "
            "trials have completed, never at a trial's first epoch (n_startup_trials=4, "
            "n_warmup_steps=1).\n\n" + "\n".join(table) + f"\n\n{summary}\n"
        )
        command = "python benchmarks/search_pruning.py " + " ".join(
            f"--{k} {v}" for k, v in vars(args).items() if k not in ("write", "pruners", "seeds")
        )
        command += " --seeds " + " ".join(map(str, args.seeds))
        if args.pruners != ["none", "median"]:
            command += " --pruners " + " ".join(f"'{p}'" for p in args.pruners)
        write_part(cpu_kind(), "search", command + " --write", text)


if __name__ == "__main__":
    main()
