"""The learning-rate finder's curve: loss against rate, the suggestion marked."""

from __future__ import annotations

import numpy as np


def figure(rates, losses, smoothed, suggestion: float, rule: str):
    """Each batch's loss and its smoothed curve on a log rate axis; a line at ``suggestion``."""
    import matplotlib

    matplotlib.use("Agg")  # files only, never a window
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(rates, losses, color="lightgray", linewidth=1, label="loss of each batch")
    ax.plot(rates, smoothed, color="C0", label="smoothed loss")
    at = float(np.interp(np.log(suggestion), np.log(rates), smoothed))
    ax.axvline(suggestion, color="C3", linestyle="--", linewidth=1)
    ax.plot([suggestion], [at], "o", color="C3", label=f"suggestion: lr={suggestion:.3g} ({rule})")
    ax.set_xscale("log")
    # The divergence at the end would flatten the part that matters: the scale follows
    # the smoothed curve, not the last batches' losses.
    low = min(float(np.min(smoothed)), float(np.min(losses)))
    high = max(float(np.max(smoothed[: max(1, len(smoothed) // 10)])), low)
    margin = 0.1 * (high - low) + 1e-6
    ax.set_ylim(low - margin, high + margin)
    ax.set_xlabel("learning rate (log scale)")
    ax.set_ylabel("training loss")
    ax.set_title("learning-rate range test")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig
