"""Where training runs: the CPU threads of a job and the tf.distribute strategy.

Parallel jobs on one machine must share its cores rather than each take them all, so a
job of a joblib sweep gets ``cores // n_jobs`` threads unless ``trainer.threads`` says;
a SLURM job gets the cores SLURM gave it (``$SLURM_CPUS_PER_TASK``).
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass

from experiments import cpus
from experiments.tracking.sweeps import in_multirun
from experiments.training import cluster, keras_multi_worker

log = logging.getLogger(__name__)


def parallel_jobs() -> int:
    """How many jobs the current Hydra launcher runs at once on this machine (1 outside sweeps)."""
    from hydra.core.hydra_config import HydraConfig

    if not in_multirun():
        return 1
    launcher = HydraConfig.get().launcher
    target = str(launcher.get("_target_", ""))
    if "joblib" in target.lower():
        jobs = launcher.get("n_jobs") or 1  # -1: one job per core
    elif target.endswith("LocalLauncher"):  # submitit's local processes: all jobs at once
        per_job = launcher.get("cpus_per_task")
        jobs = cpus.usable() // per_job if per_job else -1
    else:  # the basic launcher runs one job at a time; a cluster job has its own node
        jobs = 1
    cores = cpus.usable()
    return cores if jobs < 0 else max(1, min(int(jobs), cores))


def configure_threads(threads: int | None, logical_cpus: int | None) -> int:
    """Set TensorFlow's thread pools (before it starts); return the intra-op thread count."""
    import tensorflow as tf

    cores = cpus.usable()
    intra = threads or cluster.cpus_per_task() or max(1, cores // parallel_jobs())
    try:
        tf.config.threading.set_intra_op_parallelism_threads(intra)
        tf.config.threading.set_inter_op_parallelism_threads(min(2, intra))
        if logical_cpus:
            cpu = tf.config.list_physical_devices("CPU")[0]
            tf.config.set_logical_device_configuration(
                cpu, [tf.config.LogicalDeviceConfiguration() for _ in range(logical_cpus)]
            )
    except RuntimeError:
        # TensorFlow already started in this process (an earlier job of the same worker).
        if logical_cpus:
            log.warning(
                "trainer.logical_cpus=%d not applied: TensorFlow already started", logical_cpus
            )
        log.info("TensorFlow already started in this process; its thread pools stay as they are")
    return tf.config.threading.get_intra_op_parallelism_threads() or cores  # 0: all cores


def strategy(name: str):
    """The tf.distribute strategy ``trainer.strategy`` names (None for the default)."""
    import tensorflow as tf

    if name == "default":
        return None
    if name == "mirrored":
        gpus = tf.config.list_logical_devices("GPU")
        devices = [d.name for d in (gpus or tf.config.list_logical_devices("CPU"))]
        return tf.distribute.MirroredStrategy(devices=devices)
    if name == "multi_worker":
        keras_multi_worker.apply()  # Keras 3.15's fit fails under this strategy otherwise
        # $TF_CONFIG, else the tasks of this SLURM job
        resolver = cluster.cluster_resolver()
        return tf.distribute.MultiWorkerMirroredStrategy(cluster_resolver=resolver)
    raise ValueError(f"unknown strategy {name!r}")  # validate() stops this earlier


def scope(distribution):
    """The strategy's scope, or a no-op for the default strategy."""
    return distribution.scope() if distribution is not None else contextlib.nullcontext()


@dataclass
class Placement:
    threads: int  # TensorFlow's intra-op threads
    strategy: object | None  # a tf.distribute strategy; None for the default

    @property
    def replicas(self) -> int:
        return self.strategy.num_replicas_in_sync if self.strategy is not None else 1

    def params(self) -> dict[str, int]:
        return {"runtime.threads": self.threads, "runtime.replicas": self.replicas}


def place(trainer) -> Placement:
    """Threads and strategy as ``trainer`` asks, before TensorFlow runs anything."""
    threads = configure_threads(trainer.threads, trainer.logical_cpus)
    placement = Placement(threads, strategy(trainer.strategy))
    log.info("TensorFlow: %d intra-op threads, %d replica(s)", threads, placement.replicas)
    return placement
