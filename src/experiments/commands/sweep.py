"""Hydra sweeps as one MLflow parent run with a child run per job, under any launcher.

The callback runs in the launching process: it initialises the store once (parallel jobs
opening a fresh SQLite store at the same moment corrupt its schema migration), opens the
parent run and writes its id into the sweep folder, where every job reads it, whatever
process or machine it runs in. At the end it summarises the children on the parent.
"""

from __future__ import annotations

import atexit
import json
import logging
import shutil
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

log = logging.getLogger(__name__)

PARENT_FILE = "mlflow_parent_run.json"
FAILED_DIR = ".failed_jobs"


def parent_of_current_job() -> dict | None:
    """The sweep's parent run (id, tracking URI) when this job is part of a sweep."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    if not HydraConfig.initialized() or HydraConfig.get().mode != RunMode.MULTIRUN:
        return None
    path = Path(HydraConfig.get().sweep.dir) / PARENT_FILE
    return json.loads(path.read_text()) if path.is_file() else None


def varying_keys(config: DictConfig) -> list[str]:
    """The keys a sweep varies: its sweep overrides (``lr=1e-3,1e-2``) and a sweeper's params."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    parsed = OverridesParser.create().parse_overrides(list(config.hydra.overrides.task))
    keys = [o.key_or_group.lstrip("+~") for o in parsed if o.is_sweep_override()]
    searched = config.hydra.sweeper.get("params") or {}
    return keys + [key for key in searched if key not in keys]


def record_failed_job(error: BaseException) -> None:
    """Leave a note in the sweep folder for a job that failed, run or no run."""
    from hydra.core.hydra_config import HydraConfig

    hydra = HydraConfig.get()
    folder = Path(hydra.sweep.dir) / FAILED_DIR
    folder.mkdir(parents=True, exist_ok=True)
    note = {"job": hydra.job.num, "overrides": list(hydra.overrides.task), "error": str(error)}
    (folder / f"{hydra.job.num}.json").write_text(json.dumps(note))


class MlflowSweepCallback(Callback):
    """Opens the parent run before the jobs start and summarises it once they end."""

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        import mlflow

        from experiments import tracking
        from experiments.tracking import outbox

        uri = tracking.resolve_tracking_uri(config.mlflow.tracking_uri)
        outbox.use_short_retries(uri)  # a server gone by the summary: seconds, not minutes
        experiment_id = tracking.init_store(uri, config.mlflow.experiment_name)
        sweep_dir = Path(config.hydra.sweep.dir)
        sweep_dir.mkdir(parents=True, exist_ok=True)
        overrides = tracking.redact(" ".join(config.hydra.overrides.task))
        tags = {
            "experiments.kind": "sweep", "hydra.overrides": overrides,
            "command": tracking.redact(" ".join(sys.argv)),
        }  # fmt: skip
        parent = mlflow.MlflowClient(uri).create_run(
            experiment_id, run_name=f"sweep-{sweep_dir.name}", tags=tracking.default_tags(tags)
        )
        info = {
            "run_id": parent.info.run_id, "tracking_uri": uri, "experiment_id": experiment_id,
            "varying": varying_keys(config),
        }  # fmt: skip
        shutil.rmtree(sweep_dir / FAILED_DIR, ignore_errors=True)  # a reused sweep folder
        (sweep_dir / PARENT_FILE).write_text(json.dumps(info))
        log.info("MLflow sweep parent run %s in %s", parent.info.run_id, tracking.redact(uri))
        # Hydra skips on_multirun_end when the sweep is interrupted or its sweeper fails:
        # the parent must not stay RUNNING for ever.
        atexit.register(_end_if_running, uri, parent.info.run_id)
        _interrupt_on_sigterm()

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        import mlflow

        from experiments.reporting import summary

        sweep_dir = Path(config.hydra.sweep.dir)
        path = sweep_dir / PARENT_FILE
        if not path.is_file():
            return
        info = json.loads(path.read_text())
        client = mlflow.MlflowClient(info["tracking_uri"])
        children = client.search_runs(
            [info["experiment_id"]],
            filter_string=f"tags.mlflow.parentRunId = '{info['run_id']}'",
            max_results=10000,
        )
        failed_jobs = [
            json.loads(p.read_text()) for p in sorted((sweep_dir / FAILED_DIR).glob("*.json"))
        ]
        table = summary.rows(children, config.metric)
        problems = [
            f"job #{job['job']} ({' '.join(job['overrides'])}) failed: {job['error']}"
            for job in failed_jobs
        ]
        try:
            summary.log_to_run(client, info["run_id"], table, config.metric, failed_jobs)
            if config.mlflow.register_as:
                problems += summary.register_best(
                    client, info, table, config.metric, config.mlflow.register_as
                )
        finally:
            client.set_terminated(info["run_id"], "FINISHED")
        print(summary.to_text(table, config.metric), flush=True)
        print(summary.configurations_text(table, config.metric), flush=True)
        for problem in problems:
            print(problem, flush=True)
        if problems:
            raise SystemExit(1)


def _end_if_running(uri: str, run_id: str) -> None:
    """At exit, end a sweep parent that its summary never ended (KILLED: the sweep stopped)."""
    import mlflow

    try:
        client = mlflow.MlflowClient(uri)
        if client.get_run(run_id).info.status == "RUNNING":
            client.set_tag(run_id, "failure_reason", "the sweep stopped before its summary")
            client.set_terminated(run_id, "KILLED")
    except Exception as exc:  # the store may be gone; nothing more to save
        log.warning("could not end the sweep's parent run %s: %s", run_id, exc)


def _interrupt_on_sigterm() -> None:
    """SIGTERM stops the launching process like Ctrl-C, so exit handlers still run."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, signal.default_int_handler)
