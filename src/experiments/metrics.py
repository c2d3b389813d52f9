"""What the names of the run's metrics mean: which way is better, which epoch metric picks."""

from __future__ import annotations

LOWER_IS_BETTER = ("loss", "nll", "ece", "brier", "latency", "size_mb", "macs", "time_s")


def lower_is_better(metric: str) -> bool:
    """Losses, calibration errors and costs: lower is better; accuracies: higher."""
    return any(word in metric for word in LOWER_IS_BETTER)


def epoch_metric(metric: str) -> str:
    """The per-epoch metric that picks the best epoch for ``metric``.

    A test metric never picks an epoch (that would select on the test set): its
    validation counterpart does.
    """
    return metric.replace("test_", "val_", 1) if metric.startswith("test_") else metric


def sort_key(metric: str) -> str:
    """The table column a metric sorts by (``val_accuracy`` sorts by its best epoch)."""
    return f"best_{metric}" if metric in ("val_accuracy", "val_loss") else metric
