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
import sys
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, open_dict, read_write

from experiments.reporting import summary
from experiments.signals import interrupt_on_sigterm
from experiments.tracking import outbox, store, sweep_folder
from experiments.tracking.sweeps import FAILED_DIR, PARENT_FILE, varying_keys
from experiments.training import sweep_resume
from experiments.uris import redact

log = logging.getLogger(__name__)


class MlflowSweepCallback(Callback):
    """Opens the parent run before the jobs start and summarises it once they end."""

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        import mlflow

        uri = store.resolve_tracking_uri(config.mlflow.tracking_uri)
        outbox.use_short_retries(uri)  # a server gone by the summary: seconds, not minutes
        wait_s = config.mlflow.outage_wait_s
        experiment_id = store.init_store(uri, config.mlflow.experiment_name, wait_s)
        sweep_dir = _claim_folder(config)
        task = [o for o in config.hydra.overrides.task if not sweep_resume.ignored(o)]
        overrides = redact(" ".join(task))
        tags = {
            "experiments.kind": "sweep",
            "hydra.overrides": overrides,
            "command": redact(" ".join(sys.argv)),
        }
        client = mlflow.MlflowClient(uri)
        parent = None
        if config.trainer.resume == sweep_resume.SWEEP:
            parent = _continued(client, experiment_id, overrides)
        if parent is None:
            parent = client.create_run(
                experiment_id, run_name=f"sweep-{sweep_dir.name}", tags=store.default_tags(tags)
            )
        info = {
            "run_id": parent.info.run_id,
            "tracking_uri": uri,
            "experiment_id": experiment_id,
            "varying": varying_keys(config),
        }
        shutil.rmtree(sweep_dir / FAILED_DIR, ignore_errors=True)  # a reused sweep folder
        (sweep_dir / PARENT_FILE).write_text(json.dumps(info))
        log.info("MLflow sweep parent run %s in %s", parent.info.run_id, redact(uri))
        # Hydra skips on_multirun_end when the sweep is interrupted or its sweeper fails:
        # the parent must not stay RUNNING for ever.
        atexit.register(_end_if_running, uri, parent.info.run_id)
        interrupt_on_sigterm()  # the launching process stops like Ctrl-C: exit handlers run

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        import mlflow

        sweep_dir = Path(config.hydra.sweep.dir)
        path = sweep_dir / PARENT_FILE
        if not path.is_file():
            return
        info = json.loads(path.read_text())
        if info["tracking_uri"].startswith(("http://", "https://")):  # a restart: wait for it
            store.check_server(info["tracking_uri"], wait_s=config.mlflow.outage_wait_s)
        client = mlflow.MlflowClient(info["tracking_uri"])
        children = client.search_runs(
            [info["experiment_id"]],
            filter_string=f"tags.mlflow.parentRunId = '{info['run_id']}'",
            max_results=10000,
        )
        failed_jobs = [
            json.loads(p.read_text()) for p in sorted((sweep_dir / FAILED_DIR).glob("*.json"))
        ]
        sets = summary.report(client, children, config.metric)
        problems = [
            f"job #{job['job']} ({' '.join(job['overrides'])}) failed: {job['error']}"
            for job in failed_jobs
        ]
        try:
            summary.log_to_run(client, info["run_id"], sets, config.metric, failed_jobs)
            if config.mlflow.register_as:
                problems += summary.register_best(
                    client, info, sets, config.metric, config.mlflow.register_as
                )
        finally:
            client.set_terminated(info["run_id"], "FINISHED")
        print(summary.text(sets, config.metric), flush=True)
        for problem in problems:
            print(problem, flush=True)
        if problems:
            raise SystemExit(1)


def _continued(client, experiment_id: str, overrides: str):
    """``trainer.resume=sweep``: the newest sweep parent of the same overrides, running
    again (each job then trains only what did not finish: ``training.sweep_resume``)."""
    earlier = client.search_runs(
        [experiment_id],
        filter_string="tags.`experiments.kind` = 'sweep'",
        order_by=["attributes.start_time DESC"],
        max_results=1000,
    )
    parent = next((r for r in earlier if r.data.tags.get("hydra.overrides") == overrides), None)
    if parent is None:
        log.warning("trainer.resume=sweep: no earlier sweep of these overrides; all jobs train")
        return None
    run_id = parent.info.run_id
    client.update_run(run_id, status="RUNNING")
    reason = parent.data.tags.get("failure_reason")
    if reason is not None:
        client.set_tag(run_id, "resumed.previous_failure_reason", reason)
        client.delete_tag(run_id, "failure_reason")
    count = int(parent.data.tags.get("resumed_sweeps", "0")) + 1
    client.set_tag(run_id, "resumed_sweeps", str(count))
    log.info("trainer.resume=sweep: continuing sweep %s (%s)", parent.info.run_name, run_id)
    return parent


def _claim_folder(config: DictConfig) -> Path:
    """This sweep's own folder: Hydra's, or the next free one if another sweep holds it.

    Moving it means telling the launcher too: every job's configuration is composed again
    from the sweep's Hydra overrides, so the new folder goes there as well.
    """
    wanted = Path(config.hydra.sweep.dir)
    folder, holder = sweep_folder.claim(wanted)
    if folder != wanted:
        with read_write(config.hydra), open_dict(config.hydra):
            config.hydra.sweep.dir = str(folder)
            config.hydra.overrides.hydra.append(sweep_folder.override(folder))
        log.warning(
            "The sweep folder %s belongs to another sweep still running (%s): "
            "this sweep writes to %s",
            wanted,
            holder,
            folder,
        )
    return folder


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
