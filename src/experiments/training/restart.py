"""A run trained again from epoch 0, in the same MLflow run: never deleted, nothing lost.

A run that stopped with no checkpoint to resume from (a SLURM job requeued before its
first checkpoint, ``trainer.resume=sweep`` finding a failed job's run) is trained again
from the start in that same run. The steps it had logged stay in its metric history;
its tags say which (``superseded_steps``) and until when (``superseded_before_ms``): the
points logged after that time replace them.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from experiments.training import checkpoints, resume

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Restart:
    run_id: str
    tags: dict[str, str]  # why it restarts, and which steps are superseded


def has_checkpoint(client, run_id: str) -> bool:
    """A checkpoint of ``run_id`` in its folder, or logged as its artifact (then fetched)."""
    folder = checkpoints.folder(run_id)
    if checkpoints.read_state(folder) is not None:
        return True
    return resume.fetch_logged_checkpoint(client, run_id, folder) is not None


def of(client, run_id: str, why: dict[str, str]) -> Restart:
    """``run_id`` trained again from epoch 0; ``why``: the tag(s) saying what restarted it."""
    steps = {point.step for point in client.get_metric_history(run_id, "epoch_time_s")}
    tags = dict(why)
    if steps:
        tags["superseded_steps"] = f"{min(steps)}-{max(steps)}"
        tags["superseded_before_ms"] = str(int(time.time() * 1000))
    kept = f"; its steps {tags['superseded_steps']} are kept, tagged superseded" if steps else ""
    log.warning("Run %s trains again from epoch 0 (no checkpoint)%s", run_id, kept)
    return Restart(run_id, tags)
