"""The Hydra command line: ``python -m experiments [overrides]``."""

from __future__ import annotations

import logging
import math
import os

import hydra
from omegaconf import DictConfig

from experiments import folders
from experiments.commands import quiet
from experiments.commands.cli_args import print_error
from experiments.config import keys
from experiments.config.schema import CONF_DIR
from experiments.errors import ExperimentError
from experiments.search import trial as search_trial
from experiments.tracking import sweeps
from experiments.training import cluster, train
from experiments.training.settings import validate  # registers the schema with Hydra

log = logging.getLogger("experiments")

# TensorFlow's C++ start-up chatter (oneDNN, CPU features) drowns the run's own log.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
keys.register_resolver()  # --help lists every key's meaning (conf/hydra/help/)


@hydra.main(config_path=str(CONF_DIR), config_name="config", version_base="1.3")
def main(cfg: DictConfig) -> float | None:
    """Train one model as configured and return the metric Hydra's sweepers optimise.

    In a sweep, a job that failed returns None, which a sweeper cannot read as a number:
    Optuna records that trial as failed and goes on with the search.
    """
    in_sweep = sweeps.parent_of_current_job() is not None
    try:
        validate(cfg)  # before the training stack (matplotlib, TensorFlow) is even imported
        cfg = cluster.adapt(cfg)  # under SLURM: a restarted job resumes its run
        quiet.import_tensorflow()  # without its start-up notes

        try:
            value = train.run(cfg)
        except OSError as exc:  # a full disk anywhere else (plots, the outbox...): one line
            if not folders.is_disk_full(exc):
                raise
            raise folders.disk_full(exc.filename, None, "point the run elsewhere") from None
        if in_sweep and not math.isfinite(value):
            log.warning("%s is %s: reported to the sweeper as a failed trial", cfg.metric, value)
            return None
        objectives = search_trial.objectives()  # a search with several: each one's value
        return search_trial.values_of_last_run(objectives) if objectives else value
    except ExperimentError as exc:
        print_error(exc, to_log=True)
        if not in_sweep:
            raise SystemExit(2) from None
        sweeps.record_failed_job(exc)
    except Exception as exc:
        if not in_sweep:
            raise
        log.exception("job failed")
        sweeps.record_failed_job(exc)
    # In a sweep, a failed job must not stop the others nor the summary: the parent's
    # callback reports it and the command exits non-zero at the end.
    return None
