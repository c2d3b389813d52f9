"""What a run logs to explain its test results (``interpretation/`` in MLflow).

- ``confused_pairs.json``: the ``confused_pairs`` most frequent (true, predicted) pairs of
  distinct classes, with their count and their share of the true class's test images;
- ``top_losses.png``: the ``top_losses`` test images the model is most confidently wrong
  on (highest cross-entropy), each with its true and predicted class, the probability and
  loss, and the Grad-CAM map of the predicted class drawn over it: often mislabelled ones;
- ``correct.png``: ``per_class`` correctly predicted test images of each class (the first
  ones in the test order), with the map of their class.

All from the probabilities the run already computed; only the few pictured images go
through the model again, for their maps. A network with no spatial layer gets the tables
and galleries without maps, and a warning.
"""

from __future__ import annotations

import logging

import numpy as np

from experiments.errors import ConfigError
from experiments.explaining import gradcam, overlay

log = logging.getLogger(__name__)


def confused_pairs(labels: np.ndarray, predicted: np.ndarray, names, k: int) -> dict[str, list]:
    """The ``k`` most frequent confusions, as columns (MLflow's table format)."""
    support = np.bincount(labels, minlength=len(names))
    wrong = labels != predicted
    pairs: dict[tuple[int, int], int] = {}
    for true, guess in zip(labels[wrong].tolist(), predicted[wrong].tolist(), strict=True):
        pairs[(true, guess)] = pairs.get((true, guess), 0) + 1
    ranked = sorted(pairs.items(), key=lambda item: (-item[1], item[0]))[:k]
    return {
        "true": [names[t] for (t, _), _ in ranked],
        "predicted": [names[p] for (_, p), _ in ranked],
        "count": [n for _, n in ranked],
        "share": [round(n / support[t], 4) for (t, _), n in ranked],
    }


def top_losses(probs: np.ndarray, labels: np.ndarray, k: int) -> np.ndarray:
    """The test rows with the ``k`` highest losses, highest first."""
    loss = -np.log(np.clip(probs[np.arange(len(labels)), labels], 1e-7, 1.0))
    return np.argsort(-loss, kind="stable")[:k]


def correct_sample(probs: np.ndarray, labels: np.ndarray, per_class: int) -> np.ndarray:
    rows = [
        np.flatnonzero((labels == c) & (probs.argmax(axis=1) == c))[:per_class]
        for c in range(probs.shape[1])
    ]
    return np.concatenate(rows).astype(int) if rows else np.zeros(0, int)


def gallery(cfg, model, images: np.ndarray, labels, probs, names, title: str):
    """A figure of ``images`` with their maps (when the model has a spatial layer)."""
    import matplotlib.pyplot as plt

    cams = _maps(model, images, probs.argmax(axis=1), cfg.layer)
    columns = min(4, len(images))
    rows = -(-len(images) // columns)
    figure, axes = plt.subplots(rows, columns, figsize=(3 * columns, 3.6 * rows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, image, cam, label, p in zip(axes.flat, images, cams, labels, probs, strict=False):
        guess = int(p.argmax())
        picture = overlay.overlay(image, cam) if cam is not None else _plain(image)
        ax.imshow(picture, cmap="gray")
        loss = -np.log(max(float(p[label]), 1e-7))
        colour = "green" if guess == label else "red"
        ax.set_title(
            f"true {names[label]}\npred {names[guess]} {p[guess]:.0%}, loss {loss:.2f}",
            fontsize=8,
            color=colour,
        )
    figure.suptitle(title)
    figure.tight_layout()
    return figure


def _maps(model, images: np.ndarray, classes: np.ndarray, layer: str | None) -> list:
    try:
        explain = gradcam.explainer(model, layer)
    except ConfigError as exc:
        log.warning("Interpretation without Grad-CAM maps: %s", exc)
        return [None] * len(images)
    cams, _, _ = explain.maps(images.astype(np.float32), classes)
    return list(cams)


def _plain(image: np.ndarray) -> np.ndarray:
    pixels = np.asarray(image, np.uint8)
    return pixels[..., 0] if pixels.shape[-1] == 1 else pixels
