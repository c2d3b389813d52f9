"""Send what a run kept on disk (``outbox``) to a tracking server that answers again.

The parts go in the order they were logged: epoch metrics with their steps and times,
params, tags, then artifacts. Each part is removed from disk once the server has it, so
a server that fails again half-way never receives a part twice. A model kept as
``model.keras`` is not sent from here: the outbox logs it from memory, as it would have
been (an MLflow model, with its signature), once these parts are in.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

BATCH = 1000  # MLflow's limit of metrics per log_batch call


def send_kept(folder: Path) -> None:
    """Send ``folder``'s parts to the active run; raise as the client does when it cannot."""
    import mlflow

    client = mlflow.MlflowClient()
    run_id = mlflow.active_run().info.run_id
    client.get_run(run_id)  # the question: does the server (and its database) answer?
    mlflow.flush_async_logging()
    _send_metrics(client, run_id, folder / "metrics.jsonl")
    _send_values(client, run_id, folder / "params.json", "params")
    _send_values(client, run_id, folder / "tags.json", "tags")
    artifacts = folder / "artifacts"
    if artifacts.is_dir():
        client.log_artifacts(run_id, str(artifacts))
        shutil.rmtree(artifacts)


def _send_metrics(client, run_id: str, path: Path) -> None:
    from mlflow.entities import Metric

    if not path.is_file():
        return
    metrics = []
    for line in path.read_text().splitlines():
        entry = json.loads(line)
        step, timestamp = entry["step"] or 0, entry.get("time_ms") or 0
        metrics += [Metric(key, value, timestamp, step) for key, value in entry["metrics"].items()]
    for start in range(0, len(metrics), BATCH):
        client.log_batch(run_id, metrics=metrics[start : start + BATCH], synchronous=True)
    path.unlink()


def _send_values(client, run_id: str, path: Path, kind: str) -> None:
    from mlflow.entities import Param, RunTag

    if not path.is_file():
        return
    entity = Param if kind == "params" else RunTag
    values = [entity(key, value) for key, value in json.loads(path.read_text()).items()]
    client.log_batch(run_id, **{kind: values}, synchronous=True)
    path.unlink()
