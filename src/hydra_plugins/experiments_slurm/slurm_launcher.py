"""hydra-submitit-launcher's SLURM launcher (``hydra/launcher=slurm``), with two changes.

In the job: submitit's SIGUSR2 handler (time limit near, or preemption) requeues the job
and then exits from inside the training step. Here that exit becomes an interruption, as
SIGTERM's is, so the run ends KILLED with its checkpoint logged; the restarted job
resumes it (``experiments.training.cluster``).

In the launching process: where SLURM keeps no accounting (``sacct`` answers "accounting
storage is disabled"), submitit would ask sacct at every poll and warn each time, on three
streams; here sacct is asked once, and one warning says what that means.
"""

from __future__ import annotations

import logging
import signal
import subprocess
from typing import Any

try:
    from hydra_plugins.hydra_submitit_launcher.submitit_launcher import SlurmLauncher as _Submitit
except ImportError:  # without the sweep extra Hydra scans this module too: no launcher then
    _Submitit = None

log = logging.getLogger(__name__)

if _Submitit is not None:

    class SlurmLauncher(_Submitit):
        def launch(self, job_overrides, initial_job_idx):
            _skip_sacct_without_accounting()
            return super().launch(job_overrides, initial_job_idx)

        def __call__(self, *args: Any, **kwargs: Any):
            _interrupt_on_requeue()
            return super().__call__(*args, **kwargs)


def _interrupt_on_requeue() -> None:
    """Wrap submitit's SIGUSR2 handler: once it has requeued the job, interrupt the run."""
    import submitit  # lazy, as the plugin's: Hydra scans plugins at every start

    usr_signal = submitit.JobEnvironment._usr_sig()
    requeue = signal.getsignal(usr_signal)
    if not callable(requeue):
        return

    def interrupt(signum, frame):
        try:
            requeue(signum, frame)  # checkpoint() resubmits this job as it is; scontrol requeue
        except SystemExit:
            # SLURM's own SIGTERM follows; the run is already ending, as KILLED.
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            raise KeyboardInterrupt("SLURM requeued the job (time limit or preemption)") from None

    signal.signal(usr_signal, interrupt)


def _skip_sacct_without_accounting() -> None:
    """Where sacct cannot answer, don't ask it at every poll (each failure is three warnings)."""
    from submitit.slurm.slurm import SlurmJob  # lazy, as the plugin's: Hydra scans plugins at start

    try:
        probe = subprocess.run(
            ["sacct", "-n", "-j", "1"], capture_output=True, text=True, timeout=30
        )
    except (OSError, subprocess.SubprocessError):
        return
    if probe.returncode == 0:
        return
    reason = (probe.stderr.strip().splitlines() or ["sacct failed"])[-1]
    SlurmJob.watcher._make_command = lambda: None  # what it returns when there is nothing to ask
    log.warning(
        "sacct cannot report job states here (%s): each job is followed by its result file "
        "only, so a job killed before writing one (e.g. out of memory) keeps the sweep "
        "waiting; squeue shows whether it still runs",
        reason,
    )
