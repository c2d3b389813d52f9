"""Per-image predictions, saved with every run: what paired tests and error analysis read.

``predictions/test.npz`` and ``predictions/val.npz`` hold, for each image of the split in
the run's order: ``index``, ``label`` (true class), ``predicted`` and ``probs`` (the
probability of every class), with the split's ``digest``: two runs whose digests are
equal were scored on the same images in the same order. Read one with
``numpy.load(path)``, or ``load(client, run_id, "test")`` here.
"""

from __future__ import annotations

import io
import os
import tempfile
from pathlib import Path

import numpy as np

FOLDER = "predictions"


def arrays(labels: np.ndarray, probs: np.ndarray, digest: str) -> dict[str, np.ndarray]:
    return {
        "index": np.arange(len(labels), dtype=np.int64),
        "label": np.asarray(labels, np.int64),
        "predicted": probs.argmax(axis=1).astype(np.int64),
        "probs": probs.astype(np.float32),
        "digest": np.asarray(digest),
    }


def write(path: Path, content: dict[str, np.ndarray]) -> None:
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **content)
    path.write_bytes(buffer.getvalue())


def load(client, run_id: str, part: str) -> dict[str, np.ndarray] | None:
    """The run's saved predictions on ``part`` (test or val); None for a run without them."""
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # one bar per run
    with tempfile.TemporaryDirectory() as tmp:
        try:
            local = client.download_artifacts(run_id, f"{FOLDER}/{part}.npz", tmp)
        except Exception:  # noqa: BLE001  older runs have none; any store error reads the same
            return None
        with np.load(local, allow_pickle=False) as saved:
            return {key: saved[key] for key in saved.files}
