"""A SLURM sweep's job that is over without its result: said, noted and its run ended.

The launcher follows its jobs with ``slurm_states`` where SLURM keeps no accounting. A job
found over without a result (``scancel``, killed by a signal, out of memory, a lost
node), or one that raised past the training, gets one line on the terminal, with how it
ended where scontrol says (``FAILED (exit code 137, SIGKILL)``), a failure note for the
sweep's summary, and its MLflow run, if it opened one and it is still RUNNING, ends
KILLED (cancelled) or FAILED with the reason as its ``failure_reason`` tag; SLURM's
state is its ``slurm.state`` tag. A run the job ended KILLED itself, on the SIGTERM of
SLURM's clean-up, ends FAILED when SLURM says the job failed rather than was cancelled.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from experiments.tracking import sweeps
from experiments.training import cluster, slurm_states

log = logging.getLogger(__name__)


def ended(job, error: BaseException, sweep_dir: Path) -> list[str]:
    """Job ``job`` (a submitit job of the sweep in ``sweep_dir``) is over without a result,
    or raised past the training (an interruption): say so, note it for the summary, end its
    run, and tag it with SLURM's state (``slurm.state``); the job's overrides."""
    from submitit.core import utils

    overrides, _, number = job.submission().args[:3]
    state = job.state
    detail = slurm_states.exit_detail(job.job_id)
    how = f"{state} ({detail})" if detail else state
    reason = f"SLURM job {job.job_id} ended {how} without a result"
    if isinstance(error, utils.FailedJobError):
        reason = f"SLURM job {job.job_id} ended {how}: {_last_line(error)}"
    shown = " ".join(o for o in overrides if not o.startswith("hydra."))
    log.error("job #%d (%s): %s", number, shown, reason)
    sweeps.note_failed_job(sweep_dir, number, list(overrides), reason)
    run_file = cluster.folder(job.job_id) / "task0.run_id"
    if run_file.is_file():
        _end_run(sweep_dir, run_file.read_text().strip(), state, reason)
    return list(overrides)


def _end_run(sweep_dir: Path, run_id: str, state: str, reason: str) -> None:
    import mlflow

    try:
        uri = json.loads((sweep_dir / sweeps.PARENT_FILE).read_text())["tracking_uri"]
        client = mlflow.MlflowClient(uri)
        client.set_tag(run_id, "slurm.state", state)
        cancelled = state.startswith("CANCELLED")
        info = client.get_run(run_id).info
        if info.status == "RUNNING":
            status, end_time = ("KILLED" if cancelled else "FAILED"), None
        elif info.status == "KILLED" and not cancelled and state != "COMPLETED":
            # The job ended its run KILLED on the SIGTERM of SLURM's clean-up, which came
            # first: the job failed (its srun killed, out of memory...), and says why.
            status, end_time = "FAILED", info.end_time
        else:
            return  # the job's own end stays
        client.set_tag(run_id, "failure_reason", reason)
        client.set_terminated(run_id, status, end_time=end_time)
    except Exception as exc:  # the summary still counts the job; the run is said here
        log.warning("run %s of the dead job could not be ended (%s)", run_id, exc)


def _last_line(error: BaseException) -> str:
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return lines[-1] if lines else type(error).__name__
