"""A sweep's job side: the parent run it belongs to, the keys the sweep varies, its failures.

The launching process (``commands.sweep``) writes the parent run's id into the sweep
folder; every job, in whatever process or machine, reads it from there.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from omegaconf import DictConfig

log = logging.getLogger(__name__)

PARENT_FILE = "mlflow_parent_run.json"  # the parent run's id and store, for every job
FAILED_DIR = ".failed_jobs"  # one note per job that failed, for the summary


def in_multirun() -> bool:
    """Whether this process runs a job of a Hydra sweep (``-m``)."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN


def parent_of_current_job() -> dict | None:
    """The sweep's parent run (id, tracking URI) when this job is part of a sweep."""
    from hydra.core.hydra_config import HydraConfig

    if not in_multirun():
        return None
    path = Path(HydraConfig.get().sweep.dir) / PARENT_FILE
    return json.loads(path.read_text()) if path.is_file() else None


def swept_groups() -> set[str]:
    """The config groups (``phase``, ``optimizer``...) whose option the current sweep varies."""
    parent = parent_of_current_job() or {}
    return {key for key in parent.get("varying", []) if "." not in key}


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
    note_failed_job(hydra.sweep.dir, hydra.job.num, list(hydra.overrides.task), str(error))


def note_failed_job(sweep_dir, number: int, overrides: list[str], error: str) -> None:
    """The note the summary reads for job ``number``: its overrides and what went wrong."""
    folder = Path(sweep_dir) / FAILED_DIR
    folder.mkdir(parents=True, exist_ok=True)
    note = {"job": number, "overrides": overrides, "error": error}
    (folder / f"{number}.json").write_text(json.dumps(note))


def parent_tag(uri: str, parent: dict | None) -> dict[str, str]:
    """In a sweep, the tag that makes this job's run a child of ``parent`` (the sweep's run)."""
    if not parent:
        return {}
    if parent["tracking_uri"] != uri:
        log.warning(
            "This job tracks to %s, its sweep to %s: not linked", uri, parent["tracking_uri"]
        )
        return {}
    return {"mlflow.parentRunId": parent["run_id"]}
