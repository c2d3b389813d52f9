"""The parity gate: an exported model must give the Keras model's answers.

Each exported file is run by its own runtime on the same images as the Keras model, and
compared on top-1 agreement, the largest absolute difference in any class probability,
and (with labels) test accuracy. A float format passes with agreement >= 99.9 % and
max |dp| <= 1e-3; a quantised one may lose at most ``max_accuracy_drop`` points of accuracy
(of top-1 agreement when the images have no labels).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

FLOAT_AGREEMENT = 0.999
FLOAT_MAX_DP = 1e-3


@dataclass(frozen=True)
class Parity:
    agreement: float  # fraction of images whose top-1 class is the Keras model's
    max_dp: float  # largest |p_export - p_keras| over images and classes
    accuracy: float | None  # None without labels
    accuracy_change: float | None  # points (percent), export minus Keras

    def metrics(self, prefix: str) -> dict[str, float]:
        values = {f"{prefix}.agreement": self.agreement, f"{prefix}.max_abs_dp": self.max_dp}
        if self.accuracy is not None:
            values[f"{prefix}.accuracy"] = self.accuracy
            values[f"{prefix}.accuracy_change"] = self.accuracy_change
        return values


def accuracy(probs: np.ndarray, labels: np.ndarray | None) -> float | None:
    if labels is None or not len(labels):
        return None
    return float(np.mean(probs.argmax(axis=1) == labels))


def compare(reference: np.ndarray, probs: np.ndarray, labels: np.ndarray | None) -> Parity:
    """How closely ``probs`` (an export's) follow ``reference`` (the Keras model's)."""
    if probs.shape != reference.shape:
        raise ValueError(f"the export answers {probs.shape}, the Keras model {reference.shape}")
    agreement = float(np.mean(probs.argmax(axis=1) == reference.argmax(axis=1)))
    max_dp = float(np.max(np.abs(probs.astype(np.float64) - reference)))
    ours, theirs = accuracy(probs, labels), accuracy(reference, labels)
    change = None if ours is None else 100 * (ours - theirs)
    return Parity(agreement, max_dp, ours, change)


def verdict(parity: Parity, quantised: bool, max_accuracy_drop: float) -> str | None:
    """None when ``parity`` passes the gate, else why not (one phrase)."""
    if quantised:
        if parity.accuracy_change is not None:
            if parity.accuracy_change < -max_accuracy_drop:
                return f"accuracy fell {-parity.accuracy_change:.2f} points (> {max_accuracy_drop})"
            return None
        if 100 * (1 - parity.agreement) > max_accuracy_drop:
            return f"top-1 agreement {100 * parity.agreement:.2f} % (no labels to score)"
        return None
    if parity.agreement < FLOAT_AGREEMENT:
        return f"top-1 agreement {100 * parity.agreement:.2f} % < {100 * FLOAT_AGREEMENT} %"
    if parity.max_dp > FLOAT_MAX_DP:
        return f"max |dp| {parity.max_dp:.2e} > {FLOAT_MAX_DP:.0e}"
    return None
