"""A job under SLURM: its CPUs, its run again after a requeue, its place among workers.

SLURM may stop a job and start it again (``scontrol requeue``, preemption, a time limit
reached under submitit): the job's command runs again from the start. To carry on in the
same MLflow run, each job task writes the id of the run it opened to
``checkpoints/slurm/<job>/task<N>.run_id`` under its working directory (beside the
checkpoints, which resuming needs anyway); a restarted job finds it there and resumes that
run as ``trainer.resume=<run_id>`` would. Restarted before its first checkpoint, it trains
the same run again from epoch 0 (``run_to_restart``): a run with results is never deleted.

With ``trainer.strategy=multi_worker``, the tasks of one job are the workers: TensorFlow
builds its cluster from SLURM's variables, and only the chief (task 0) logs to the
configured tracking store. The other workers run the same steps (they must: every step
is collective) into a store of their own under ``checkpoints/slurm/<job>/``.
"""

from __future__ import annotations

import logging
import os
import subprocess
from pathlib import Path

from omegaconf import DictConfig

from experiments.tracking import store
from experiments.training import restart

log = logging.getLogger(__name__)

PORT_BASE = 20000  # TensorFlow's workers listen on PORT_BASE + an offset per job and task


def job_key() -> str | None:
    """The SLURM job this process runs in (``<array job>_<task>`` in an array), else None."""
    if os.environ.get("SLURM_ARRAY_TASK_ID"):
        return f"{os.environ['SLURM_ARRAY_JOB_ID']}_{os.environ['SLURM_ARRAY_TASK_ID']}"
    return os.environ.get("SLURM_JOB_ID")


def task_rank() -> int:
    """This process's task in its SLURM job step (0 outside SLURM)."""
    return int(os.environ.get("SLURM_PROCID", "0"))


def tasks() -> int:
    """How many tasks the current SLURM job step runs (1 outside SLURM)."""
    return int(os.environ.get("SLURM_STEP_NUM_TASKS") or os.environ.get("SLURM_NTASKS") or 1)


def cpus_per_task() -> int | None:
    """The CPU cores SLURM gave each task of this job (``--cpus-per-task``), if it says."""
    value = os.environ.get("SLURM_CPUS_PER_TASK", "")
    return int(value) if value.isdigit() and int(value) > 0 else None


def restarted() -> bool:
    """Whether SLURM is running this job again (requeued, preempted)."""
    return int(os.environ.get("SLURM_RESTART_COUNT") or 0) > 0


def folder(key: str) -> Path:
    """Where a SLURM job keeps the ids of its tasks' runs (and its workers' own stores)."""
    return Path.cwd() / "checkpoints" / "slurm" / key


def remember_run(run_id: str) -> None:
    """Note which run this SLURM job task trains, for the job's restarts (no-op outside SLURM)."""
    key = job_key()
    if key is None:
        return
    path = folder(key) / f"task{task_rank()}.run_id"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(run_id)


def adapt(cfg: DictConfig) -> DictConfig:
    """``cfg`` for this SLURM job task: resume its run after a restart; a worker's own store."""
    if job_key() is None:
        return cfg
    if cfg.trainer.strategy == "multi_worker" and task_rank() > 0:
        _worker_store(cfg)
    if restarted() and not cfg.trainer.resume:
        cfg.trainer.resume = _run_to_resume(cfg)
    return cfg


def _worker_store(cfg: DictConfig) -> None:
    """A non-chief worker trains like the chief but logs into a store of its own."""
    store = folder(job_key()) / f"task{task_rank()}"
    store.mkdir(parents=True, exist_ok=True)
    cfg.mlflow.tracking_uri = f"sqlite:///{store / 'mlflow.db'}"
    cfg.mlflow.log_model = False
    cfg.mlflow.samples = 0
    log.info("multi_worker task %d: the chief (task 0) logs the run, not this one", task_rank())


def _run_to_resume(cfg: DictConfig) -> str | None:
    """The run this job task opened before SLURM restarted it, if it has a checkpoint: in
    its folder, or logged as the run's artifact when the job stopped."""
    import mlflow

    run_id = _remembered()
    if run_id is None:
        return None  # stopped before its run opened: start afresh
    uri = store.resolve_tracking_uri(cfg.mlflow.tracking_uri)
    store.init_store(uri, cfg.mlflow.experiment_name)
    if restart.has_checkpoint(mlflow.MlflowClient(uri), run_id):
        log.info("SLURM restarted job %s: resuming its run %s", job_key(), run_id)
        return run_id
    return None  # no checkpoint: run_to_restart() trains the same run again from epoch 0


def _remembered() -> str | None:
    path = folder(job_key()) / f"task{task_rank()}.run_id"
    return path.read_text().strip() if path.is_file() else None


def run_to_restart(uri: str) -> restart.Restart | None:
    """The run this restarted job task opened and has no checkpoint of (see ``adapt``):
    trained again from epoch 0 in the same run, never deleted (``training.restart``)."""
    import mlflow

    run_id = _remembered() if job_key() is not None and restarted() else None
    client = mlflow.MlflowClient(uri)
    if run_id is None or client.get_run(run_id).info.status == "FINISHED":
        return None  # nothing opened yet, or nothing left to train: a run of its own
    log.info("SLURM restarted job %s before its first checkpoint", job_key())
    count = os.environ.get("SLURM_RESTART_COUNT", "1")
    return restart.of(client, run_id, {"restarted_from_epoch_0": count})


def cluster_resolver():
    """TensorFlow's view of this SLURM job's tasks as workers, or None to read ``$TF_CONFIG``."""
    if os.environ.get("TF_CONFIG") or job_key() is None or tasks() < 2:
        return None
    import tensorflow as tf

    workers = worker_addresses()
    log.info("SLURM job %s: workers %s; this is worker %d", job_key(), workers, task_rank())
    return tf.distribute.cluster_resolver.SimpleClusterResolver(
        tf.train.ClusterSpec({"worker": workers}),
        task_type="worker",
        task_id=task_rank(),
        rpc_layer="grpc",
    )


def worker_addresses() -> list[str]:
    """``host:port`` of each task of this job step, in task order (SLURM fills node by node).

    TensorFlow's SlurmClusterResolver does the same but needs GPUs: without them it
    finds no tasks at all (TF 2.21).
    """
    nodes = os.environ.get("SLURM_STEP_NODELIST") or os.environ["SLURM_JOB_NODELIST"]
    hosts = subprocess.run(
        ["scontrol", "show", "hostnames", nodes], capture_output=True, text=True, check=True
    ).stdout.split()
    per_node = os.environ.get("SLURM_STEP_TASKS_PER_NODE") or os.environ["SLURM_TASKS_PER_NODE"]
    # Two multi-worker jobs sharing a node must not listen on the same ports.
    port = PORT_BASE + (int(os.environ["SLURM_JOB_ID"]) % 1000) * 16
    counts = expand_counts(per_node)
    return [f"{host}:{port + i}" for host, n in zip(hosts, counts, strict=True) for i in range(n)]


def expand_counts(spec: str) -> list[int]:
    """SLURM's compressed per-node counts, e.g. ``2(x3),1`` -> ``[2, 2, 2, 1]``."""
    counts: list[int] = []
    for part in spec.split(","):
        count, _, repeat = part.partition("(x")
        counts += [int(count)] * int(repeat.rstrip(")") or 1)
    return counts
