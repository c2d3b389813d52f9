"""hydra-submitit-launcher's SLURM launcher (``hydra/launcher=slurm``), with two changes.

In the job: submitit's SIGUSR2 handler (time limit near, or preemption) requeues the job
and then exits from inside the training step. Here that exit becomes an interruption, as
SIGTERM's is, so the run ends KILLED with its checkpoint logged; the restarted job
resumes it (``experiments.training.cluster``). The interruption then ends the job with
one line, not a traceback in its ``.err``.

In the launching process: where SLURM keeps no accounting (``sacct`` answers "accounting
storage is disabled"), submitit would ask sacct at every poll, warn each time on three
streams, and wait for ever on a job that died without its result; here sacct is asked
once, the jobs are followed with scontrol (``experiments.training.slurm_states``), and a
job over without a result is a failed job of the sweep (``slurm_watch``). A job PENDING
for a reason that will not clear is said once (``slurm_pending``). A sweep stopped by
Ctrl-C or SIGTERM cancels its jobs. The jobs' states are asked at least every ``POLL_S``
seconds: submitit waits half the time since the last submission between two asks, up to
10 minutes, so a sweep of hour-long jobs ended, or found a dead one, minutes late.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

from experiments import signals

try:
    from hydra_plugins.hydra_submitit_launcher.submitit_launcher import SlurmLauncher as _Submitit
except ImportError:  # without the sweep extra Hydra scans this module too: no launcher then
    _Submitit = None

log = logging.getLogger(__name__)

POLL_S = 10  # the longest wait between two asks of the jobs' states (one command for all)

if _Submitit is not None:

    class SlurmLauncher(_Submitit):
        def launch(self, job_overrides, initial_job_idx):
            _poll_often()
            _follow_without_accounting()
            sweep_dir = Path(str(self.config.hydra.sweep.dir))
            with (
                _dead_jobs_as_failed(sweep_dir),
                _grace_from_the_end(),
                _stuck_jobs_said(),
                _cancel_on_stop(),
            ):
                return super().launch(job_overrides, initial_job_idx)

        def __call__(self, *args: Any, **kwargs: Any):
            _interrupt_on_requeue()
            try:
                return super().__call__(*args, **kwargs)
            except KeyboardInterrupt as stop:
                # SLURM stopped the job (scancel, requeue, time limit); its run has ended
                # KILLED already. One line in the job's .err, not a traceback.
                log.warning("SLURM stopped the job (%s); its run ended KILLED", stop or "signal")
                raise SystemExit(130) from None


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
            raise signals.requested("SLURM requeued the job (time limit or preemption)") from None

    signal.signal(usr_signal, interrupt)


def _poll_often() -> None:
    """Ask the jobs' states at least every ``POLL_S`` seconds (submitit: up to 600)."""
    from submitit.slurm.slurm import SlurmJob  # lazy, as the plugin's: Hydra scans plugins at start

    SlurmJob.watcher._delay_s = min(SlurmJob.watcher._delay_s, POLL_S)


def _follow_without_accounting() -> None:
    """Where sacct cannot answer, follow the jobs with scontrol (``slurm_states``). Asked once
    per process: a search launches its trials one by one, and said it at each."""
    from submitit.slurm.slurm import SlurmJob  # lazy, as the plugin's: Hydra scans plugins at start

    if getattr(SlurmJob.watcher, "_sacct_asked", False):
        return
    SlurmJob.watcher._sacct_asked = True
    from experiments.training import slurm_states

    try:
        probe = subprocess.run(
            ["sacct", "-n", "-j", "1"], capture_output=True, text=True, timeout=30
        )
    except (OSError, subprocess.SubprocessError):
        return
    if probe.returncode == 0:
        return
    reason = (probe.stderr.strip().splitlines() or ["sacct failed"])[-1]
    watcher = SlurmJob.watcher
    watcher._make_command = lambda: slurm_states.command(
        list(watcher._registered - watcher._finished)
    )
    log.warning(
        "sacct cannot report job states here (%s): the jobs are followed with scontrol; "
        "one that leaves the queue without a result is reported as failed",
        reason,
    )


@contextlib.contextmanager
def _dead_jobs_as_failed(sweep_dir: Path):
    """While the launcher waits for its jobs: a job over without a result (cancelled,
    killed, lost) is a failed job of the sweep, as a job whose training failed is (its
    result None), not an exception that ends the whole sweep."""
    from submitit.core import utils
    from submitit.slurm.slurm import SlurmJob

    from experiments.training import slurm_watch

    original = SlurmJob.results

    def results(job):
        try:
            return original(job)
        except (utils.UncompletedJobError, utils.FailedJobError) as exc:
            return [_no_result(slurm_watch.ended(job, exc, sweep_dir))]

    SlurmJob.results = results
    try:
        yield
    finally:
        SlurmJob.results = original


@contextlib.contextmanager
def _grace_from_the_end():
    """submitit gives a job that is over ``_results_timeout_s`` (15 s) for its result file to
    show (a slow shared file system), counted from when the launcher asks for the result;
    the launcher asks job after job, so a sweep whose n jobs died together waited n x 15 s.
    Here each job's grace counts from the poll that first saw it over: they wait together."""
    from submitit.slurm.slurm import SlurmJob

    watcher, ended_at = SlurmJob.watcher, {}
    update, outcome = watcher.update, SlurmJob._get_outcome_and_result

    def noting_update():
        update()
        now = time.time()
        for job_id in watcher._registered - ended_at.keys():
            if watcher.is_done(job_id, mode="cache"):
                ended_at[job_id] = now

    def outcome_after_grace(job):
        ended = ended_at.get(job.job_id)
        if ended is not None:  # else submitit's own grace, from now
            job._results_timeout_s = max(0.0, SlurmJob._results_timeout_s - (time.time() - ended))
        return outcome(job)

    watcher.update, SlurmJob._get_outcome_and_result = noting_update, outcome_after_grace
    try:
        yield
    finally:
        watcher.update, SlurmJob._get_outcome_and_result = update, outcome


@contextlib.contextmanager
def _stuck_jobs_said():
    """At each poll of submitit's watcher, the sweep's jobs PENDING for a reason that will
    not clear (held, a request over the partition's limits) get one warning each."""
    from submitit.slurm.slurm import SlurmJob

    from experiments.training import slurm_pending

    watcher, report = SlurmJob.watcher, slurm_pending.Reporter()
    original = watcher.update

    def update():
        original()
        report(sorted(watcher._registered - watcher._finished))

    watcher.update = update
    try:
        yield
    finally:
        watcher.update = original


@contextlib.contextmanager
def _cancel_on_stop():
    """Ctrl-C or SIGTERM of the sweep (which the launching process takes as Ctrl-C): its
    jobs, queued or running, are cancelled (their runs end KILLED, as a SIGTERM ends a run)."""
    try:
        yield
    except KeyboardInterrupt:
        from submitit.slurm.slurm import SlurmJob

        watcher = SlurmJob.watcher
        jobs = sorted(watcher._registered - watcher._finished)
        tasks = [job for job in jobs if "_" in job] or jobs
        if tasks:
            subprocess.run(["scancel", *jobs], capture_output=True, timeout=30, check=False)
            log.warning("Stopped: cancelled SLURM job(s) %s (scancel)", ", ".join(tasks))
        raise


def _no_result(overrides: list[str]):
    """What a job whose training failed returns to Hydra: no value (the sweep goes on)."""
    from hydra.core.utils import JobReturn, JobStatus

    return JobReturn(overrides=overrides, status=JobStatus.COMPLETED, _return_value=None)
