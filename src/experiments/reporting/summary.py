"""Side-by-side tables of finished runs, for sweep parents and the compare command.

Runs are first split by evaluation set (``evaluation_sets``): nothing is ranked or tested
across sets. Per set, two tables: one row per run (its test accuracy with a 95% interval
from its test-set size, its cost and calibration), and one row per configuration, where
runs that differ only in ``seed`` are aggregated (n, mean ± standard deviation, min and
max), each tested against the best one (``stats`` says how) and marked on the Pareto
fronts of accuracy against latency and size.
"""

from __future__ import annotations

import csv
import io
import tempfile
from dataclasses import dataclass
from pathlib import Path

from experiments.errors import ExperimentError
from experiments.metrics import sort_key
from experiments.reporting import aggregate, evaluation_sets, pareto, run_table
from experiments.tracking import logged_models, predictions


@dataclass
class EvaluationSet:
    description: str  # evaluation_sets.describe
    rows: list[dict]  # its runs, best first
    groups: list[dict]  # its configurations (aggregate.configurations)


def report(client, runs, metric: str) -> list[EvaluationSet]:
    """MLflow's ``runs`` as rows per evaluation set, each with its configurations tested.

    Single runs are tested image by image on their saved predictions, read once each.
    """
    saved: dict[tuple[str, str], dict | None] = {}

    def saved_predictions(run_id: str, part: str):
        if (run_id, part) not in saved:
            saved[(run_id, part)] = predictions.load(client, run_id, part)
        return saved[(run_id, part)]

    sets = []
    for rows_of_set in evaluation_sets.split(run_table.rows(runs, metric)):
        description = evaluation_sets.describe(rows_of_set)
        for row in rows_of_set:
            row["evaluation_set"] = description
        groups = aggregate.configurations(rows_of_set, metric, saved_predictions)
        sets.append(EvaluationSet(description, rows_of_set, groups))
    return sets


def text(sets: list[EvaluationSet], metric: str) -> str:
    """Every set's run table and configuration table, one set after the other."""
    parts = []
    if len(sets) > 1:
        parts.append(
            f"These runs were scored on {len(sets)} different evaluation sets: one table per "
            "set; nothing is ranked or tested across sets."
        )
    for number, found in enumerate(sets, start=1):
        heading = (
            f"Evaluation set {number} of {len(sets)}: " if len(sets) > 1 else "Evaluation set: "
        )
        parts.append(heading + found.description)
        parts.append(run_table.to_text(found.rows, metric))
        parts.append("\n" + aggregate.to_text(found.groups, metric))
    return "\n".join(parts)


def _label(row: dict) -> str:
    return f"{row['run']} ({row['run_id'][:8]})"


def write_files(client, sets: list[EvaluationSet], metric: str, folder: Path) -> list[Path]:
    """The tables as CSV, Markdown and text; test accuracy, validation curves and the
    accuracy–latency front, one panel per evaluation set."""
    import matplotlib.pyplot as plt

    from experiments.reporting import reports  # imports matplotlib: only when files are written

    folder.mkdir(parents=True, exist_ok=True)
    table = [row for found in sets for row in found.rows]
    (folder / "comparison.csv").write_text(run_table.to_csv(table))
    (folder / "comparison.md").write_text(run_table.to_markdown(table))
    out = io.StringIO()
    writer = csv.writer(out)
    for number, found in enumerate(sets):
        aggregate.write_csv_rows(writer, found.groups, found.description, header=number == 0)
    (folder / "configurations.csv").write_text(out.getvalue())
    (folder / "configurations.txt").write_text(text(sets, metric) + "\n")
    paths = [
        folder / n
        for n in ("comparison.csv", "comparison.md", "configurations.csv", "configurations.txt")
    ]
    panels = [
        (found.description, [row for row in found.rows if row.get("test_accuracy") is not None])
        for found in sets
    ]
    panels = [(title, rows) for title, rows in panels if rows]
    if not panels:
        return paths
    figure = reports.accuracy_bars(
        [
            (title, [_label(r) for r in rows], [r["test_accuracy"] for r in rows])
            for title, rows in panels
        ]
    )
    figure.savefig(folder / "test_accuracy.png", dpi=100)
    plt.close(figure)
    curves = [
        (
            title,
            {
                _label(row): [
                    m.value for m in client.get_metric_history(row["run_id"], "val_accuracy")
                ]
                for row in rows
            },
        )
        for title, rows in panels
    ]
    figure = reports.overlaid_curves(curves, "val_accuracy")
    figure.savefig(folder / "val_accuracy_curves.png", dpi=100)
    plt.close(figure)
    paths += [folder / "test_accuracy.png", folder / "val_accuracy_curves.png"]
    fronts = [(found.description, found.groups) for found in sets if found.groups]
    if any(g.get("latency_ms") for _, groups in fronts for g in groups):
        key = sets[0].groups[0]["key"] if sets[0].groups else "test_accuracy"
        figure = pareto.scatter(fronts, key if key.endswith("accuracy") else "test_accuracy")
        figure.savefig(folder / "pareto.png", dpi=100)
        plt.close(figure)
        paths.append(folder / "pareto.png")
    return paths


def log_to_run(client, run_id: str, sets: list[EvaluationSet], metric: str, failed_jobs=()) -> None:
    """Attach the comparison to ``run_id``: files, the best child of each set, the failures."""
    with tempfile.TemporaryDirectory() as tmp:
        for path in write_files(client, sets, metric, Path(tmp)):
            client.log_artifact(run_id, str(path), "summary")
    key = sort_key(metric)
    for number, found in enumerate(sets):
        best = aggregate.champion(found.groups)
        if best is None:
            continue
        # One set: the plain tags; several: one best per set, never one across them.
        suffix = "" if len(sets) == 1 else f".set{number + 1}"
        client.set_tag(run_id, f"best_run_id{suffix}", best["run_id"])
        client.set_tag(run_id, f"best_run_name{suffix}", best["run"])
        client.set_tag(run_id, f"best_{metric}{suffix}", f"{float(best[key]):.6g}")
        if len(sets) > 1:
            client.set_tag(run_id, f"evaluation_set{suffix}", found.description[:5000])
            continue
        # The best job's own settings, e.g. an Optuna trial's sampled values.
        for item in (best.get("overrides") or "").split():
            name, sep, value = item.partition("=")
            if sep and not name.startswith(("hydra", "hparams_search")):
                client.log_param(run_id, f"best.{name.lstrip('+~')}", value)
    # Counts are tags: as metrics they would fill the UI's charts with meaningless plots.
    table = [row for found in sets for row in found.rows]
    client.set_tag(run_id, "runs", str(len(table)))
    ended_badly = sum(r["status"] in ("FAILED", "KILLED") for r in table)
    client.set_tag(run_id, "failed_runs", str(ended_badly))
    client.set_tag(run_id, "failed_jobs", str(len(failed_jobs)))  # with a run or without
    client.set_tag(run_id, "evaluation_sets", str(len(sets)))
    if failed_jobs:
        lines = [f"#{j['job']} {' '.join(j['overrides'])}: {j['error']}" for j in failed_jobs]
        client.log_text(run_id, "\n".join(lines) + "\n", "summary/failed_jobs.txt")


def register_best(
    client, target: dict, sets: list[EvaluationSet], metric: str, name: str
) -> list[str]:
    """Register the best configuration's best run's model as ``name``@champion.

    ``target`` is the run that records it (``run_id``, ``tracking_uri``); returns the
    problems to report (none when it was registered). Runs of several evaluation sets
    have no winner: nothing is registered, and the problem says how to choose a set.
    """
    if len(sets) > 1:
        datasets = sorted({row["evaluation"][0] or "?" for found in sets for row in found.rows})
        return [
            f"error: register_as={name}: these runs were scored on {len(sets)} evaluation sets "
            "and a winner across them means nothing; choose one with "
            f"filter=\"tags.dataset = '{datasets[0]}'\" (or the set's classes and sizes)"
        ]
    best = aggregate.champion(sets[0].groups) if sets else None
    if best is None:
        return [f"error: register_as={name}: no finished run to register"]
    try:
        version = logged_models.register_champion(
            target["tracking_uri"], best["run_id"], name, "register_as"
        )
    except ExperimentError as exc:
        return [f"error: {exc}"]
    client.set_tag(target["run_id"], "registered_model", f"{name}/{version}")
    print(
        f"Registered {best['run']} ({best['run_id']}) as models:/{name}/{version}, "
        f"alias {logged_models.CHAMPION}: models:/{name}@{logged_models.CHAMPION}",
        flush=True,
    )
    return []
