"""The Hydra command line: ``python -m experiments [overrides]``."""

from __future__ import annotations

import logging
import math
import os
import sys

import hydra
from omegaconf import DictConfig

from experiments.commands import quiet
from experiments.config import CONF_DIR  # importing it registers the schema with Hydra
from experiments.errors import ExperimentError
from experiments.training import cluster

log = logging.getLogger("experiments")

# TensorFlow's C++ start-up chatter (oneDNN, CPU features) drowns the run's own log.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


@hydra.main(config_path=str(CONF_DIR), config_name="config", version_base="1.3")
def main(cfg: DictConfig) -> float | None:
    """Train one model as configured and return the metric Hydra's sweepers optimise.

    In a sweep, a job that failed returns None, which a sweeper cannot read as a number:
    Optuna records that trial as failed and goes on with the search.
    """
    from experiments.commands import sweep
    from experiments.config import validate

    in_sweep = sweep.parent_of_current_job() is not None
    try:
        validate(cfg)  # before the training stack (matplotlib, TensorFlow) is even imported
        cfg = cluster.adapt(cfg)  # under SLURM: a restarted job resumes its run
        quiet.import_tensorflow()  # without its start-up notes
        from experiments.training import train

        value = train.run(cfg)
        if in_sweep and not math.isfinite(value):
            log.warning("%s is %s: reported to the sweeper as a failed trial", cfg.metric, value)
            return None
        return value
    except ExperimentError as exc:
        log.error("%s", exc)
        print(f"error: {exc}", file=sys.stderr)
        if not in_sweep:
            raise SystemExit(2) from None
        sweep.record_failed_job(exc)
    except Exception as exc:
        if not in_sweep:
            raise
        log.exception("job failed")
        sweep.record_failed_job(exc)
    # In a sweep, a failed job must not stop the others nor the summary: the parent's
    # callback reports it and the command exits non-zero at the end.
    return None
