"""Side-by-side tables of finished runs, for sweep parents and the compare command.

Two tables: one row per run (its test accuracy with a 95% interval from its test-set
size), and one row per configuration, where runs that differ only in ``seed`` are
aggregated (n, mean ± standard deviation, min and max) and each configuration is tested
against the best one (``stats`` says how).
"""

from __future__ import annotations

import csv
import io
import tempfile
from pathlib import Path

from experiments.errors import ExperimentError
from experiments.metrics import lower_is_better, sort_key
from experiments.reporting import aggregate, stats
from experiments.tracking import logged_models

# (column, where it comes from): tag, param, metric or run info
COLUMNS = [
    ("run", "info.run_name"),
    ("status", "info.status"),
    ("backbone", "tag.backbone"),
    ("phase", "tag.phase"),
    ("dataset", "tag.dataset"),
    ("optimizer", "param.optimizer.name"),
    ("lr", "param.optimizer.lr"),
    ("epochs", "param.trainer.epochs"),
    ("trainable_params", "metric.trainable_params"),
    ("total_params", "metric.total_params"),
    ("train_time_s", "metric.train_time_s"),
    ("best_val_accuracy", "metric.best_val_accuracy"),
    ("test_accuracy", "metric.test_accuracy"),
    ("test_loss", "metric.test_loss"),
    ("test_acc_low", None),  # the 95% Wilson interval of test_accuracy
    ("test_acc_high", None),
    ("seed", "param.seed"),
    ("overrides", "tag.hydra.overrides"),
    ("run_id", "info.run_id"),
]
# Params that do not make a configuration: the seed, where and how a run was tracked or
# shown, and the data sizes that follow from the rest.
NOT_CONFIGURATION = (
    "seed",
    "mlflow.",
    "runtime.",
    "data.",
    "trainer.resume",
    "trainer.verbose",
    "trainer.checkpoints",
    "trainer.threads",
)


def _value(run, source: str | None):
    if source is None:
        return None
    kind, _, key = source.partition(".")
    if kind == "info":
        return getattr(run.info, key)
    if kind == "tag":
        return run.data.tags.get(key)
    if kind == "param":
        return run.data.params.get(key)
    value = run.data.metrics.get(key)
    if value is None and key.startswith("best_"):
        value = run.data.metrics.get(key.removeprefix("best_"))
    return value


def _row(run, key: str) -> dict:
    row = {name: _value(run, source) for name, source in COLUMNS}
    if key not in row:
        row[key] = _value(run, f"metric.{key}")
    sizes = {part: run.data.params.get(f"data.{part}_size") for part in ("test", "val")}
    row["sizes"] = {part: int(size) for part, size in sizes.items() if size is not None}
    if row["test_accuracy"] is not None and "test" in row["sizes"]:
        low, high = stats.wilson_interval(row["test_accuracy"], row["sizes"]["test"])
        row["test_acc_low"], row["test_acc_high"] = low, high
    row["configuration"] = tuple(
        sorted((k, v) for k, v in run.data.params.items() if not k.startswith(NOT_CONFIGURATION))
    )
    return row


def _order(key: str, lower: bool):
    def order(row):
        value = row.get(key)
        if value is None:
            return (1, 0.0)
        return (0, value if lower else -value)

    return order


def rows(runs, metric: str) -> list[dict]:
    """One row per run, best first by ``metric``; runs without it come last."""
    key = sort_key(metric)
    return sorted((_row(run, key) for run in runs), key=_order(key, lower_is_better(metric)))


def _cell(value, column: str = "") -> str:
    if value is None:
        return "-"
    if isinstance(value, float) and column.endswith("_s"):
        return f"{value:.1f}"
    if isinstance(value, float):
        if value.is_integer() and abs(value) >= 1:
            return f"{int(value):,}"
        return f"{value:.4f}" if abs(value) < 100 else f"{value:.1f}"
    return str(value)


# The terminal table: short headers, parameters as trainable/total.
TEXT_COLUMNS = [
    ("run", "run"),
    ("status", "status"),
    ("backbone", "backbone"),
    ("phase", "phase"),
    ("dataset", "dataset"),
    ("optimizer", "opt"),
    ("lr", "lr"),
    ("epochs", "epochs"),
    ("params", "params"),
    ("train_time_s", "time_s"),
    ("best_val_accuracy", "best_val_acc"),
    ("test_accuracy", "test_acc"),
    ("test_ci", "test_acc_95%"),
    ("test_loss", "test_loss"),
    ("seed", "seed"),
]


def _params(row: dict) -> str:
    trainable, total = row.get("trainable_params"), row.get("total_params")
    if total is None:
        return "-"
    return f"{_cell(trainable)}/{_cell(total)}"


def _text_cell(row: dict, key: str) -> str:
    if key == "params":
        return _params(row)
    if key == "test_ci":
        if row.get("test_acc_low") is None:
            return "-"
        return f"[{row['test_acc_low']:.4f}, {row['test_acc_high']:.4f}]"
    if key == "lr" and row.get("lr") is not None:
        return f"{float(row['lr']):.3g}"  # a sampled lr is stored with all its digits
    return _cell(row.get(key), key)


def to_text(table: list[dict], metric: str) -> str:
    """A fixed-width table for the terminal."""
    headers = [header for _, header in TEXT_COLUMNS]
    cells = [[_text_cell(row, key) for key, _ in TEXT_COLUMNS] for row in table]
    return f"{len(table)} runs, best first by {metric}:\n" + aggregate.fixed_width(headers, cells)


def to_markdown(table: list[dict]) -> str:
    columns = [name for name, _ in COLUMNS]
    lines = ["| " + " | ".join(columns) + " |", "|" + " --- |" * len(columns)]
    lines += ["| " + " | ".join(_cell(row.get(c), c) for c in columns) + " |" for row in table]
    return "\n".join(lines) + "\n"


def to_csv(table: list[dict]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=[name for name, _ in COLUMNS], extrasaction="ignore")
    writer.writeheader()
    writer.writerows(table)
    return out.getvalue()


def _label(row: dict) -> str:
    return f"{row['run']} ({row['run_id'][:8]})"


def write_files(client, table: list[dict], metric: str, folder: Path) -> list[Path]:
    """The table as CSV and Markdown, a bar chart of test accuracy, the validation curves."""
    import matplotlib.pyplot as plt

    from experiments.reporting import reports  # imports matplotlib: only when files are written

    folder.mkdir(parents=True, exist_ok=True)
    (folder / "comparison.csv").write_text(to_csv(table))
    (folder / "comparison.md").write_text(to_markdown(table))
    groups = aggregate.configurations(table, metric)
    (folder / "configurations.csv").write_text(aggregate.to_csv(groups))
    (folder / "configurations.txt").write_text(aggregate.to_text(groups, metric) + "\n")
    paths = [
        folder / n
        for n in ("comparison.csv", "comparison.md", "configurations.csv", "configurations.txt")
    ]
    finished = [row for row in table if row.get("test_accuracy") is not None]
    if finished:
        labels = [_label(row) for row in finished]  # run names repeat across seeds and sweeps
        figure = reports.accuracy_bars(labels, [row["test_accuracy"] for row in finished])
        figure.savefig(folder / "test_accuracy.png", dpi=100)
        plt.close(figure)
        curves = {
            label: [m.value for m in client.get_metric_history(row["run_id"], "val_accuracy")]
            for label, row in zip(labels, finished, strict=True)
        }
        figure = reports.overlaid_curves(curves, "val_accuracy")
        figure.savefig(folder / "val_accuracy_curves.png", dpi=100)
        plt.close(figure)
        paths += [folder / "test_accuracy.png", folder / "val_accuracy_curves.png"]
    return paths


def log_to_run(client, run_id: str, table, metric: str, failed_jobs=()) -> None:
    """Attach the comparison to ``run_id``: files, the best child, the failures."""
    with tempfile.TemporaryDirectory() as tmp:
        for path in write_files(client, table, metric, Path(tmp)):
            client.log_artifact(run_id, str(path), "summary")
    key = sort_key(metric)
    best = aggregate.champion(aggregate.configurations(table, metric))
    if best is not None:
        client.set_tag(run_id, "best_run_id", best["run_id"])
        client.set_tag(run_id, "best_run_name", best["run"])
        client.set_tag(run_id, f"best_{metric}", f"{float(best[key]):.6g}")
        # The best job's own settings, e.g. an Optuna trial's sampled values.
        for item in (best.get("overrides") or "").split():
            name, sep, value = item.partition("=")
            if sep and not name.startswith(("hydra", "hparams_search")):
                client.log_param(run_id, f"best.{name.lstrip('+~')}", value)
    # Counts are tags: as metrics they would fill the UI's charts with meaningless plots.
    client.set_tag(run_id, "runs", str(len(table)))
    client.set_tag(run_id, "failed_runs", str(sum(r["status"] == "FAILED" for r in table)))
    if failed_jobs:
        lines = [f"#{j['job']} {' '.join(j['overrides'])}: {j['error']}" for j in failed_jobs]
        client.log_text(run_id, "\n".join(lines) + "\n", "summary/failed_jobs.txt")


def configurations_text(table: list[dict], metric: str) -> str:
    return "\n" + aggregate.to_text(aggregate.configurations(table, metric), metric)


def register_best(client, target: dict, table: list[dict], metric: str, name: str) -> list[str]:
    """Register the best configuration's best run's model as ``name``@champion.

    ``target`` is the run that records it (``run_id``, ``tracking_uri``); returns the
    problems to report (none when it was registered).
    """
    best = aggregate.champion(aggregate.configurations(table, metric))
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
