"""Figures and tables a run leaves behind: learning curves, a prediction grid, top-k rows."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")  # files only, never a window

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from experiments.reporting import calibration  # noqa: E402


def stage_starts(stages: list[str]) -> dict[str, int]:
    """``["warmup@0", "finetune@2"]`` as ``{"warmup": 0, "finetune": 2}``."""
    starts = {}
    for entry in stages:
        name, _, step = entry.rpartition("@")
        starts[name] = int(step)
    return starts


def learning_curves(history: dict[str, list[float]], starts: dict[str, int] | None = None):
    """Accuracy and loss per epoch, training against validation, side by side.

    The x axis is MLflow's step axis (epochs from 0); a dashed line marks where each stage
    after the first begins (where fine-tuning starts).
    """
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, metric in zip(axes, ("accuracy", "loss"), strict=True):
        for key, style in ((metric, "-o"), (f"val_{metric}", "-s")):
            if key in history:
                ax.plot(np.arange(len(history[key])), history[key], style, label=key)
        for name, step in (starts or {}).items():
            if step > 0:
                ax.axvline(step - 0.5, color="gray", linestyle="--", linewidth=1)
                ax.annotate(
                    f"{name} starts",
                    (step - 0.5, 1.0),
                    xycoords=("data", "axes fraction"),
                    xytext=(3, -12),
                    textcoords="offset points",
                    fontsize=8,
                    color="gray",
                )
        ax.xaxis.set_major_locator(plt.MaxNLocator(integer=True))
        ax.set_xlabel("epoch (MLflow step)")
        ax.set_ylabel(metric)
        ax.set_title(f"model {metric}")
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    return fig


def prediction_grid(images: np.ndarray, labels: np.ndarray, probs: np.ndarray, class_names):
    """Each image with its true label, the predicted label and its confidence (red when wrong)."""
    n = len(images)
    cols = min(n, 6)
    rows = max(1, -(-n // cols))
    fig, axes = plt.subplots(rows, cols, figsize=(2.2 * cols, 2.6 * rows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, image, label, p in zip(axes.flat, images, labels, probs, strict=False):
        pred = int(np.argmax(p))
        cmap = "gray" if image.shape[-1] == 1 else None
        ax.imshow(image.squeeze(-1) if image.shape[-1] == 1 else image, cmap=cmap)
        ax.set_title(
            f"true: {class_names[label]}\npred: {class_names[pred]} ({p[pred]:.0%})",
            fontsize=8,
            color="tab:green" if pred == label else "tab:red",
        )
    fig.tight_layout()
    return fig


def accuracy_bars(panels: list[tuple[str, list[str], list[float]]]):
    """Test accuracy per run, one horizontal bar each, best at the top; one panel per
    evaluation set, titled with it (accuracies of different sets are never one chart)."""
    heights = [0.45 * len(names) + 1.2 for _, names, _ in panels]
    fig, axes = plt.subplots(
        len(panels), 1, figsize=(8, sum(heights)), squeeze=False, height_ratios=heights
    )
    for ax, (title, names, values) in zip(axes[:, 0], panels, strict=True):
        order = np.argsort(values)
        ax.barh([names[i] for i in order], [values[i] for i in order], color="tab:blue")
        for y, i in enumerate(order):
            ax.text(values[i], y, f" {values[i]:.2%}", va="center", fontsize=8)
        ax.set_xlim(0, 1.1)
        ax.set_xlabel("test accuracy")
        ax.set_title(title, fontsize=9)
    fig.tight_layout()
    return fig


def overlaid_curves(panels: list[tuple[str, dict[str, list[float]]]], metric: str):
    """One line per run of ``metric`` by epoch; one panel per evaluation set."""
    fig, axes = plt.subplots(len(panels), 1, figsize=(8, 5 * len(panels)), squeeze=False)
    for ax, (title, curves) in zip(axes[:, 0], panels, strict=True):
        for name, values in curves.items():
            ax.plot(np.arange(len(values)), values, "-o", markersize=3, label=name)
        ax.set_xlabel("epoch (step)")
        ax.set_ylabel(metric)
        ax.set_title(title, fontsize=9)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def confusion_matrix(labels: np.ndarray, predicted: np.ndarray, num_classes: int) -> np.ndarray:
    """Counts of (true, predicted) pairs: rows are true classes."""
    matrix = np.zeros((num_classes, num_classes), np.int64)
    np.add.at(matrix, (labels, predicted), 1)
    return matrix


def confusion_figure(matrix: np.ndarray, class_names):
    n = len(class_names)
    fig, ax = plt.subplots(figsize=(1.0 + 0.6 * n, 0.8 + 0.6 * n))
    ax.imshow(matrix, cmap="Blues")
    ax.set_xticks(range(n), class_names, rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(n), class_names, fontsize=8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    for (i, j), count in np.ndenumerate(matrix):
        colour = "white" if count > matrix.max() / 2 else "black"
        ax.text(j, i, str(count), ha="center", va="center", fontsize=7, color=colour)
    fig.tight_layout()
    return fig


def per_class_scores(matrix: np.ndarray, class_names) -> dict[str, list]:
    """Precision, recall, F1 and support per class, as table columns (recall and F1 null
    for a class with no test image)."""
    true_pos = np.diag(matrix).astype(float)
    predicted, actual = matrix.sum(axis=0), matrix.sum(axis=1)
    precision = np.divide(true_pos, predicted, out=np.zeros_like(true_pos), where=predicted > 0)
    recall = np.divide(true_pos, actual, out=np.zeros_like(true_pos), where=actual > 0)
    total = precision + recall
    f1 = np.divide(2 * precision * recall, total, out=np.zeros_like(total), where=total > 0)
    tested = actual > 0  # a class without test images has no recall: null, not 0

    def scores(values):
        return [round(float(v), 4) if t else None for v, t in zip(values, tested, strict=True)]

    return {
        "class": list(class_names),
        "precision": [round(float(v), 4) for v in precision],
        "recall": scores(recall),
        "f1": scores(f1),
        "support": [int(v) for v in actual],
    }


def reliability_figure(probs: np.ndarray, labels: np.ndarray, calibrated: np.ndarray):
    """Accuracy against confidence per bin, before and after temperature scaling.

    A calibrated model's bars follow the diagonal; bars below it are overconfident.
    """
    fig, axes = plt.subplots(1, 2, figsize=(9, 4.2), sharey=True)
    edges = np.linspace(0, 1, calibration.BINS + 1)
    for ax, p, title in zip(
        axes, (probs, calibrated), ("as trained", "temperature-scaled"), strict=True
    ):
        _, accuracy, counts = calibration.reliability(p, labels)
        filled = counts > 0
        ax.bar(
            edges[:-1][filled],
            accuracy[filled],
            width=1 / calibration.BINS,
            align="edge",
            edgecolor="black",
            color="tab:blue",
            alpha=0.8,
            label="accuracy",
        )
        ax.plot([0, 1], [0, 1], "--", color="gray", label="perfect calibration")
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.set_xlabel("confidence (top probability)")
        ax.set_title(f"{title}: ECE {calibration.ece(p, labels):.3f}")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("accuracy")
    axes[0].legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    return fig
