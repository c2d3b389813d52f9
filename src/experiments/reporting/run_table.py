"""One row per run: what MLflow holds for it, as a terminal table, Markdown and CSV.

Each row carries its test accuracy with a 95% interval from its test-set size, its cost
(latency, size, multiply-adds) and calibration, and the key of its evaluation set.
"""

from __future__ import annotations

import csv
import io

from experiments.metrics import lower_is_better, sort_key
from experiments.reporting import aggregate, evaluation_sets, stats

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
    ("latency_ms", "metric.latency_ms"),  # batch 1, median (training/cost.py)
    ("latency_ms_q1", "metric.latency_ms_q1"),
    ("latency_ms_q3", "metric.latency_ms_q3"),
    ("throughput_ips", "metric.throughput_ips"),
    ("size_mb", "metric.size_mb"),
    ("macs", "metric.macs"),
    ("epoch_time_mean_s", "metric.epoch_time_mean_s"),
    ("test_ece", "metric.test_ece"),
    ("test_nll", "metric.test_nll"),
    ("test_brier", "metric.test_brier"),
    ("temperature", "metric.temperature"),
    ("test_ece_calibrated", "metric.test_ece_calibrated"),
    ("cpu", "tag.cost.cpu"),
    ("seed", "param.seed"),
    ("overrides", "tag.hydra.overrides"),
    ("run_id", "info.run_id"),
    ("test_digest", "tag.data.test_digest"),
    ("evaluation_set", None),  # evaluation_sets.describe of the run's set
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
    "cost.",
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
    row["evaluation"] = evaluation_sets.key(run)
    row["search_state"] = run.data.tags.get("optuna.state")  # PRUNED: stopped by its search
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
    ("run", "run (id)"),
    ("status", "status"),
    ("backbone", "backbone"),
    ("phase", "phase"),
    ("optimizer", "opt"),
    ("lr", "lr"),
    ("epochs", "epochs"),
    ("params", "params"),
    ("train_time_s", "time_s"),
    ("best_val_accuracy", "best_val_acc"),
    ("test_accuracy", "test_acc"),
    ("test_ci", "test_acc_95%"),
    ("test_loss", "test_loss"),
    ("latency", "latency_ms [IQR]"),
    ("size_mb", "size_MB"),
    ("test_ece", "ece"),
    ("seed", "seed"),
]


def _params(row: dict) -> str:
    trainable, total = row.get("trainable_params"), row.get("total_params")
    if total is None:
        return "-"
    return f"{_cell(trainable)}/{_cell(total)}"


def _text_cell(row: dict, key: str) -> str:
    if key == "run":  # names repeat across seeds and sweeps: the id tells them apart
        return f"{row['run']} ({row['run_id'][:8]})"
    if key == "params":
        return _params(row)
    if key == "test_ci":
        if row.get("test_acc_low") is None:
            return "-"
        return f"[{row['test_acc_low']:.4f}, {row['test_acc_high']:.4f}]"
    if key == "latency":
        if row.get("latency_ms") is None:
            return "-"
        return f"{row['latency_ms']:.2f} [{row['latency_ms_q1']:.2f}, {row['latency_ms_q3']:.2f}]"
    if key == "size_mb" and row.get("size_mb") is not None:
        return f"{row['size_mb']:.2f}"
    if key == "lr" and row.get("lr") not in (None, "find"):  # find: the finder's rate
        return f"{float(row['lr']):.3g}"  # a sampled lr is stored with all its digits
    return _cell(row.get(key), key)


def to_text(table: list[dict], metric: str) -> str:
    """A fixed-width table of the runs of one evaluation set, for the terminal."""
    headers = [header for _, header in TEXT_COLUMNS]
    cells = [[_text_cell(row, key) for key, _ in TEXT_COLUMNS] for row in table]
    runs = f"{len(table)} run" + ("" if len(table) == 1 else "s")
    return f"{runs}, best first by {metric}:\n" + aggregate.fixed_width(headers, cells)


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
