"""Side-by-side tables of finished runs, for sweep parents and the compare command."""

from __future__ import annotations

import csv
import io
import tempfile
from pathlib import Path

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
    ("overrides", "tag.hydra.overrides"),
    ("run_id", "info.run_id"),
]
LOWER_IS_BETTER = ("loss",)


def _value(run, source: str):
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


def sort_key(metric: str) -> str:
    """The table column a metric sorts by (``val_accuracy`` sorts by its best epoch)."""
    return f"best_{metric}" if metric in ("val_accuracy", "val_loss") else metric


def rows(runs, metric: str) -> list[dict]:
    """One row per run, best first by ``metric``; runs without it come last."""
    table = [{name: _value(run, source) for name, source in COLUMNS} for run in runs]
    key = sort_key(metric)
    for row, run in zip(table, runs, strict=True):
        if key not in row:
            row[key] = _value(run, f"metric.{key}")
    lower = any(word in metric for word in LOWER_IS_BETTER)

    def order(row):
        value = row.get(key)
        if value is None:
            return (1, 0.0)
        return (0, value if lower else -value)

    return sorted(table, key=order)


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
    ("run", "run"), ("status", "status"), ("backbone", "backbone"), ("phase", "phase"),
    ("dataset", "dataset"), ("optimizer", "opt"), ("lr", "lr"), ("epochs", "epochs"),
    ("params", "params"), ("train_time_s", "time_s"), ("best_val_accuracy", "best_val_acc"),
    ("test_accuracy", "test_acc"), ("test_loss", "test_loss"),
]  # fmt: skip


def _params(row: dict) -> str:
    trainable, total = row.get("trainable_params"), row.get("total_params")
    if total is None:
        return "-"
    return f"{_cell(trainable)}/{_cell(total)}"


def _text_cell(row: dict, key: str) -> str:
    if key == "params":
        return _params(row)
    if key == "lr" and row.get("lr") is not None:
        return f"{float(row['lr']):.3g}"  # a sampled lr is stored with all its digits
    return _cell(row.get(key), key)


def to_text(table: list[dict], metric: str) -> str:
    """A fixed-width table for the terminal."""
    headers = [header for _, header in TEXT_COLUMNS]
    cells = [[_text_cell(row, key) for key, _ in TEXT_COLUMNS] for row in table]
    widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(headers)]
    lines = [
        "  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip(),
        "  ".join("-" * w for w in widths),
    ]
    lines += ["  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip() for r in cells]
    return f"{len(table)} runs, best first by {metric}:\n" + "\n".join(lines)


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

    from experiments import reports

    folder.mkdir(parents=True, exist_ok=True)
    (folder / "comparison.csv").write_text(to_csv(table))
    (folder / "comparison.md").write_text(to_markdown(table))
    paths = [folder / "comparison.csv", folder / "comparison.md"]
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
    best = next(
        (row for row in table if row.get(key) is not None and row["status"] == "FINISHED"), None
    )
    if best is not None:
        client.set_tag(run_id, "best_run_id", best["run_id"])
        client.set_tag(run_id, "best_run_name", best["run"])
        client.log_metric(run_id, f"best_{metric}", float(best[key]))
        # The best job's own settings, e.g. an Optuna trial's sampled values.
        for item in (best.get("overrides") or "").split():
            name, sep, value = item.partition("=")
            if sep and not name.startswith(("hydra", "hparams_search")):
                client.log_param(run_id, f"best.{name.lstrip('+~')}", value)
    client.log_metric(run_id, "runs", len(table))
    client.log_metric(run_id, "failed_runs", sum(r["status"] == "FAILED" for r in table))
    if failed_jobs:
        lines = [f"#{j['job']} {' '.join(j['overrides'])}: {j['error']}" for j in failed_jobs]
        client.log_text(run_id, "\n".join(lines) + "\n", "summary/failed_jobs.txt")
