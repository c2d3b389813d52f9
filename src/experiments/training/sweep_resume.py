"""``trainer.resume=sweep``: the same sweep command again, training only what did not finish.

Added to the command of a sweep that was stopped (Ctrl-C, SIGTERM, a cluster's job
cancelled) or whose jobs failed, it continues that sweep: the launching process reopens
the newest sweep parent run of the same overrides (``commands.sweep``), and each job looks
among that parent's children for its own configuration (the same value of every key it
overrides):

- a FINISHED run: nothing to train; the job answers that run's value;
- a run with a checkpoint: resumed from it, as ``trainer.resume=<run_id>``;
- a run without one: trained again from epoch 0 in the same run (``training.restart``);
- none: a new run, as in the first sweep.
"""

from __future__ import annotations

import logging

from omegaconf import DictConfig

from experiments.config.schema import flatten
from experiments.errors import ConfigError
from experiments.tracking import provenance, sweeps
from experiments.training import restart

log = logging.getLogger(__name__)

SWEEP = "sweep"  # trainer.resume's value that continues a sweep


def ignored(override: str) -> bool:
    """An override that does not tell one configuration from another: Hydra's, the resume."""
    key = override.lstrip("+~").split("=", 1)[0]
    return key.startswith("hydra.") or key == "trainer.resume"


def plan(cfg: DictConfig, uri: str) -> tuple[float | None, restart.Restart | None]:
    """What this job of a continued sweep does: (the value of its FINISHED run, None), or
    (None, a restart of its run); ``cfg.trainer.resume`` set to a run to resume, or None."""
    import mlflow

    parent = sweeps.parent_of_current_job()
    if parent is None:
        raise ConfigError(
            "trainer.resume",
            "=sweep continues a sweep: run the sweep's command again, with -m and "
            "trainer.resume=sweep (for one run, trainer.resume=<run_id>)",
        )
    client = mlflow.MlflowClient(uri)
    earlier = _same_configuration(cfg, client, parent)
    cfg.trainer.resume = None
    if earlier is None:
        return None, None
    run_id = earlier.info.run_id
    if earlier.info.status == "FINISHED":
        log.info("This configuration's run %s is FINISHED already: not trained again", run_id)
        metrics = earlier.data.metrics
        return float(metrics.get(f"best_{cfg.metric}", metrics.get(cfg.metric, "nan"))), None
    if restart.has_checkpoint(client, run_id):
        cfg.trainer.resume = run_id
        return None, None
    return None, restart.of(client, run_id, {"restarted_from_epoch_0": "trainer.resume=sweep"})


def _same_configuration(cfg: DictConfig, client, parent: dict):
    """The newest child of ``parent`` whose params, under every key this job overrides
    (all of a config group's, for a group), are this job's, as its run would log them."""
    keys = [o.lstrip("+~").split("=", 1)[0] for o in provenance.overrides() if not ignored(o)]
    flat = flatten(cfg)
    wanted = {
        name: str(value)
        for name, value in flat.items()
        if any(name == key or name.startswith(f"{key}.") for key in keys)
    }
    children = client.search_runs(
        [parent["experiment_id"]],
        filter_string=f"tags.mlflow.parentRunId = '{parent['run_id']}'",
        order_by=["attributes.start_time DESC"],
        max_results=10000,
    )
    for child in children:
        if all(child.data.params.get(name) == value for name, value in wanted.items()):
            return child
    return None
