"""Figures and tables a run leaves behind: learning curves, a prediction grid, top-k rows."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")  # files only, never a window

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def learning_curves(history: dict[str, list[float]]):
    """Accuracy and loss per epoch, training against validation, side by side."""
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, metric in zip(axes, ("accuracy", "loss"), strict=True):
        for key, style in ((metric, "-o"), (f"val_{metric}", "-s")):
            if key in history:
                epochs = np.arange(1, len(history[key]) + 1)
                ax.plot(epochs, history[key], style, label=key)
        ax.set_xlabel("epoch")
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


def top_k_rows(labels: np.ndarray, probs: np.ndarray, class_names, k: int) -> list[dict]:
    """One row per sample: its index, true label and the ``k`` most probable classes."""
    k = min(k, len(class_names))
    rows = []
    for i, (label, p) in enumerate(zip(labels, probs, strict=True)):
        row = {"sample": i, "true": class_names[label]}
        for rank, c in enumerate(np.argsort(p)[::-1][:k], start=1):
            row[f"top{rank}"] = class_names[c]
            row[f"top{rank}_prob"] = round(float(p[c]), 6)
        rows.append(row)
    return rows


def format_top_k(probs: np.ndarray, class_names, k: int) -> str:
    """The reference report's format: '#1 avocado @ 97.48%' lines, most probable first."""
    lines = ["Results provided by selected model:"]
    for rank, c in enumerate(np.argsort(probs)[::-1][: min(k, len(class_names))], start=1):
        lines.append(f"        #{rank} {class_names[c]} @ {probs[c]:.2%}")
    return "\n".join(lines)
