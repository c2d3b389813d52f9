"""Classes ranked by probability: the top-k rows of a run, the lines ``predict`` prints."""

from __future__ import annotations

import numpy as np


def top_classes(probs: np.ndarray, k: int) -> list[int]:
    """The indices of the ``k`` most probable classes (all, if fewer), most probable first."""
    return [int(c) for c in np.argsort(probs)[::-1][: min(k, len(probs))]]


def top_k_rows(labels: np.ndarray, probs: np.ndarray, class_names, k: int) -> list[dict]:
    """One row per sample: its index, true label and the ``k`` most probable classes."""
    rows = []
    for i, (label, p) in enumerate(zip(labels, probs, strict=True)):
        row = {"sample": i, "true": class_names[label]}
        for rank, c in enumerate(top_classes(p, k), start=1):
            row[f"top{rank}"] = class_names[c]
            row[f"top{rank}_prob"] = round(float(p[c]), 6)
        rows.append(row)
    return rows


def format_top_k(probs: np.ndarray, class_names, k: int) -> str:
    """The reference report's format: '#1 avocado @ 97.48%' lines, most probable first."""
    lines = ["Results provided by selected model:"]
    for rank, c in enumerate(top_classes(probs, k), start=1):
        lines.append(f"        #{rank} {class_names[c]} @ {probs[c]:.2%}")
    return "\n".join(lines)
