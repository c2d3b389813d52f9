"""SLURM jobs: against a real one-node SLURM (scripts/local_slurm.sh, marked ``cluster``),
sweeps, requeues, time limits and several workers in one run, tracked by a real MLflow
server; and, without SLURM, how a job reads its environment."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import mlflow
import pytest
from helpers import free_port, run_cli, start_server, stop, user_environment

from experiments.errors import ConfigError
from experiments.tracking import sweeps
from experiments.training import cluster, slurm_pending, slurm_request, slurm_states, slurm_watch
from test_sweep import failure_report

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "local_slurm.sh"
# One core and 2 GB per job: two jobs at once on the 2-core node.
SLURM = ["-m", "hydra/launcher=slurm", "hydra.launcher.cpus_per_task=1", "hydra.launcher.mem_gb=2"]
TINY = [
    "backbone=custom_cnn",
    "trainer.verbose=0",
    "cost=quick",
    "interpretation=off",
    "mlflow.samples=2",
    "mlflow.log_model=false",
]
CURVES = ("loss", "accuracy", "val_loss", "val_accuracy", "epoch_time_s")


@pytest.fixture(scope="session")
def slurm(tmp_path_factory) -> dict[str, str]:
    """A running one-node SLURM for the session; the environment that reaches it."""
    missing = [n for n in ("slurmctld", "slurmd", "munged", "sbatch") if not shutil.which(n)]
    reason = None
    if missing:
        reason = (
            f"SLURM is not installed (no {', '.join(missing)}): apt-get install slurm-wlm munge"
        )
    elif os.geteuid() != 0:
        reason = "the local SLURM runs its daemons as root; these tests need root"
    if reason:
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    folder = tmp_path_factory.mktemp("slurm")
    ports = {"LOCAL_SLURM_CTLD_PORT": str(free_port()), "LOCAL_SLURM_SLURMD_PORT": str(free_port())}
    env = {**user_environment(), "LOCAL_SLURM_DIR": str(folder), **ports}
    started = subprocess.run([SCRIPT, "start"], env=env, capture_output=True, text=True)
    assert started.returncode == 0, started.stdout + started.stderr
    try:
        yield {"SLURM_CONF": str(folder / "slurm.conf")}
    finally:
        subprocess.run([SCRIPT, "stop"], env=env, check=False)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """A real `mlflow server` on loopback, as the nodes of a cluster would share."""
    url, process = start_server(tmp_path_factory.mktemp("server"))
    yield url
    stop(process, signal.SIGKILL)  # its store is thrown away: no graceful shutdown (5 s)


@pytest.fixture
def tracking(server, request) -> list[str]:
    """Overrides that track to the server, into an experiment of this test's own."""
    return [f"mlflow.tracking_uri={server}", f"mlflow.experiment_name={request.node.name}"]


def slurm_command(*args: str, env: dict) -> str:
    return subprocess.run(
        list(args), env={**os.environ, **env}, capture_output=True, text=True, check=True
    ).stdout


def runs_of(tracking: list[str]) -> tuple[mlflow.MlflowClient, list]:
    """A client of the server and the runs of this test's experiment."""
    client = mlflow.MlflowClient(tracking[0].split("=", 1)[1])
    experiment = client.get_experiment_by_name(experiment_name(tracking))
    return client, client.search_runs([experiment.experiment_id]) if experiment else []


def experiment_name(tracking: list[str]) -> str:
    return tracking[1].split("=", 1)[1]


def children(tracking: list[str]) -> list:
    return [run for run in runs_of(tracking)[1] if "mlflow.parentRunId" in run.data.tags]


def assert_one_value_per_step(client, run, epochs: int) -> None:
    for key in CURVES:
        steps = [m.step for m in client.get_metric_history(run.info.run_id, key)]
        assert sorted(steps) == list(range(epochs)), (key, steps)


@contextlib.contextmanager
def sweep(workdir, slurm, *overrides: str, output: Path | None = None):
    """A SLURM sweep running in the background; stopped if the test fails. Its output is
    piped, or written to the file ``output`` (both streams) to be read while it runs."""
    streams = {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE}
    with contextlib.ExitStack() as files:
        if output is not None:
            written = files.enter_context(output.open("w"))
            streams = {"stdout": written, "stderr": subprocess.STDOUT}
        process = subprocess.Popen(
            [sys.executable, "-m", "experiments", *SLURM, *TINY, *overrides],
            cwd=workdir,
            env={**user_environment(), "TF_CPP_MIN_LOG_LEVEL": "2", **slurm},
            text=True,
            **streams,
        )
        try:
            yield process
        finally:
            if process.poll() is None:
                process.kill()
                process.communicate()


def wait_for_epochs(tracking, process, epochs: int, timeout: float = 300) -> str:
    """The id of the sweep's only job run, once it has logged ``epochs`` epochs."""
    client = runs_of(tracking)[0]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None:
        runs = children(tracking)
        if runs and len(client.get_metric_history(runs[0].info.run_id, "val_accuracy")) >= epochs:
            return runs[0].info.run_id
        time.sleep(0.5)
    pytest.fail(f"the job never logged {epochs} epoch(s): {process.poll()=}")


def finish(process, workdir) -> None:
    """Wait for the sweep; it must end well, its summary listing its one run."""
    stdout, stderr = process.communicate(timeout=600)
    result = subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)
    assert process.returncode == 0, failure_report(result, workdir)
    assert "1 run, best first by val_accuracy" in stdout


def the_job(slurm) -> str:
    """The id of the one job in the queue."""
    return slurm_command("squeue", "-h", "-o", "%i", env=slurm).split()[0]


@pytest.mark.slow
@pytest.mark.cluster
def test_a_requeued_job_resumes_its_run_and_one_without_a_checkpoint_trains_it_again(
    workdir, slurm, tracking, fashion_dir
):
    """``scontrol requeue`` of a sweep's two jobs, once each has logged 2 epochs:
    - the job with checkpoints resumes its run from the last one, on one step axis;
    - the job without: a run with results is never deleted. It trains again from epoch 0,
      and the steps it had logged stay, tagged superseded.
    (One sweep for both; there were two tests.)"""
    epochs = 8
    overrides = ("trainer.checkpoints=true,false", "dataset.limit=3000", f"trainer.epochs={epochs}")
    before = set(slurm_command("squeue", "-h", "-r", "-o", "%i", env=slurm).split())
    with sweep(workdir, slurm, *overrides, *tracking) as process:
        client = runs_of(tracking)[0]
        deadline = time.monotonic() + 300
        while True:
            runs = children(tracking)
            logged = [len(client.get_metric_history(r.info.run_id, "val_accuracy")) for r in runs]
            if len(runs) == 2 and min(logged) >= 2:
                break
            assert process.poll() is None and time.monotonic() < deadline, (logged, process.poll())
            time.sleep(0.5)
        ids = {r.data.params["trainer.checkpoints"]: r.info.run_id for r in runs}
        ours = set(slurm_command("squeue", "-h", "-r", "-o", "%i", env=slurm).split()) - before
        requeued = time.monotonic()
        slurm_command("scontrol", "requeue", ",".join(sorted(ours)), env=slurm)
        while not client.get_run(ids["True"]).data.tags.get("resumed_at_step"):
            time.sleep(0.5)
        print(f"\nrequeue: {time.monotonic() - requeued:.1f} s to the run resumed")
        stdout, stderr = process.communicate(timeout=600)
        result = subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)
        assert process.returncode == 0, failure_report(result, workdir)
        assert "2 runs, best first by val_accuracy" in stdout

    after = {r.data.params["trainer.checkpoints"]: r for r in children(tracking)}
    assert {r.info.run_id for r in after.values()} == set(ids.values())  # the same two runs
    assert {r.info.status for r in after.values()} == {"FINISHED"}
    resumed = after["True"]
    at_step = int(resumed.data.tags["resumed_at_step"])
    assert 0 < at_step < epochs
    assert_one_value_per_step(client, resumed, epochs)

    again = after["False"]
    assert again.info.lifecycle_stage == "active"
    tags = again.data.tags
    assert tags["restarted_from_epoch_0"] == "1"
    first, last = map(int, tags["superseded_steps"].split("-"))
    cut = int(tags["superseded_before_ms"])
    for key in CURVES:
        history = client.get_metric_history(again.info.run_id, key)
        before_cut = sorted(m.step for m in history if m.timestamp < cut)
        after_cut = sorted(m.step for m in history if m.timestamp >= cut)
        assert before_cut == list(range(first, last + 1)) and last >= 1, (key, before_cut)
        assert after_cut == list(range(epochs)), (key, after_cut)  # trained again from 0


def minutes_run(slurm, job: str) -> int:
    """Whole minutes the job has run (squeue's [D-][H:]M:SS)."""
    elapsed = slurm_command("squeue", "-h", "-j", job, "-o", "%M", env=slurm).strip()
    days, _, clock = elapsed.rpartition("-")
    parts = [int(p) for p in clock.split(":")]
    seconds = sum(p * 60**i for i, p in enumerate(reversed(parts)))
    return (int(days or 0) * 86400 + seconds) // 60


def job_process(slurm, job: str, name: str) -> int:
    """The pid of the job's ``name`` process (``python``: submitit's task, or ``srun``; not
    srun's shepherd, a child with srun's command line that ends the step if srun dies)."""
    listed = slurm_command("scontrol", "listpids", job, env=slurm).splitlines()[1:]
    found = {}
    for pid in (int(line.split()[0]) for line in listed):
        with contextlib.suppress(OSError):
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            if name in Path(argv[0].decode()).name and b"submitit.core._submit" in argv:
                parent = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[1]
                found[pid] = int(parent)
    tops = [pid for pid, parent in found.items() if parent not in found]
    if len(tops) != 1:
        pytest.fail(f"no single {name} among the processes of job {job}: {listed}")
    return tops[0]


def stopped(pid: int) -> bool:
    """Whether the process ``pid`` is still stopped (by SIGSTOP); False once it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] == "T"


@pytest.mark.slow
@pytest.mark.cluster
def test_job_at_its_time_limit_is_requeued_and_resumes(workdir, slurm, tracking, fashion_dir):
    # SLURM sends SIGUSR2 once the limit is under signal_delay_s + 30 s away (it checks
    # every 30 s). Rather than wait minutes, the test lowers the running job's limit until
    # that is now, then raises it again while the requeued job waits to start. Meanwhile
    # the job's Python is stopped (SIGSTOP), so that SLURM's signal finds it mid-training
    # however fast the epochs left are: SLURM sends SIGCONT along with its SIGUSR2.
    epochs = 4
    overrides = (
        "hydra.launcher.timeout_min=10",
        "hydra.launcher.signal_delay_s=90",
        "dataset.limit=2000",
        f"trainer.epochs={epochs}",
        *tracking,
    )
    with sweep(workdir, slurm, *overrides) as process:
        wait_for_epochs(tracking, process, 1)
        job = the_job(slurm)
        task = job_process(slurm, job, "python")  # submitit's task
        os.kill(task, signal.SIGSTOP)
        try:
            limit = minutes_run(slurm, job) + 2  # its SIGUSR2 due now: sent at SLURM's next check
            slurm_command("scontrol", "update", f"JobId={job}", f"TimeLimit={limit}", env=slurm)
            deadline = time.monotonic() + 90
            while stopped(task):  # SLURM sends SIGCONT with its SIGUSR2
                assert time.monotonic() < deadline, "SLURM sent no signal at the time limit"
                time.sleep(0.2)
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.kill(task, signal.SIGCONT)
        while process.poll() is None:
            state = slurm_command("squeue", "-h", "-j", job, "-o", "%T", env=slurm).strip()
            if state == "PENDING":  # requeued
                update = ["scontrol", "update", f"JobId={job}", "TimeLimit=10"]
                if subprocess.run(update, env={**os.environ, **slurm}).returncode == 0:
                    break
            time.sleep(0.2)
        finish(process, workdir)

    [run] = children(tracking)
    assert run.info.status == "FINISHED"
    assert run.data.tags.get("resumed_at_step")
    assert_one_value_per_step(runs_of(tracking)[0], run, epochs)
    logs = "".join(p.read_text() for p in workdir.glob("multirun/*/*/.submitit/*/*_log.out"))
    errors = "".join(p.read_text() for p in workdir.glob("multirun/*/*/.submitit/*/*_log.err"))
    assert "this job is timed-out" in logs
    # The requeue, as SLURM records it: submitit's own "Requeued job" line races with
    # SLURM stopping the job it requeues, and was lost once.
    assert "DUE TO JOB REQUEUE" in errors


@pytest.mark.slow
@pytest.mark.cluster
def test_multi_worker_job_is_one_run_trained_by_both_tasks(workdir, slurm, tracking, fashion_dir):
    result = run_cli(
        *SLURM,
        "hydra.launcher.tasks_per_node=2",
        "trainer.strategy=multi_worker",
        "dataset.limit=256",
        "trainer.epochs=2",
        "trainer.batch_size=64",
        *TINY,
        *tracking,
        cwd=workdir,
        env=slurm,
    )
    assert result.returncode == 0, failure_report(result, workdir)
    client = runs_of(tracking)[0]
    [run] = children(tracking)  # the second worker logged nothing here
    assert run.info.status == "FINISHED"
    assert run.data.params["runtime.replicas"] == "2"  # one replica per worker
    assert run.data.params["trainer.batch_size"] == "64"  # the global batch, over both
    assert_one_value_per_step(client, run, 2)
    # The other worker trained the same steps in lockstep, into a store of its own.
    [store] = workdir.glob("checkpoints/slurm/*/task1/mlflow.db")
    worker = mlflow.MlflowClient(f"sqlite:///{store}")
    [twin] = worker.search_runs(
        [worker.get_experiment_by_name(experiment_name(tracking)).experiment_id]
    )
    for key in ("loss", "val_accuracy"):
        ours = [m.value for m in client.get_metric_history(run.info.run_id, key)]
        assert [m.value for m in worker.get_metric_history(twin.info.run_id, key)] == ours


def test_slurm_counts_and_job_keys(monkeypatch):
    assert cluster.expand_counts("2(x3),1") == [2, 2, 2, 1]
    monkeypatch.setenv("SLURM_JOB_ID", "17")
    assert cluster.job_key() == "17"
    monkeypatch.setenv("SLURM_ARRAY_JOB_ID", "16")
    monkeypatch.setenv("SLURM_ARRAY_TASK_ID", "1")
    assert cluster.job_key() == "16_1"  # what submitit calls the job, stable over requeues


def restarted_job(monkeypatch, store_uri, run_id: str, checkpointed: bool):
    """The config a restarted SLURM job runs with, after its first attempt opened ``run_id``."""
    from hydra import compose, initialize_config_dir

    from experiments.config.schema import CONF_DIR
    from experiments.training import checkpoints, settings

    assert settings.schema  # imported: the schema the configs extend is registered

    monkeypatch.setenv("SLURM_JOB_ID", "5")
    cluster.remember_run(run_id)
    if checkpointed:
        folder = checkpoints.folder(run_id)
        folder.mkdir(parents=True)
        (folder / checkpoints.LAST).write_bytes(b"")
        state = checkpoints.State("scratch", first_step=0, epochs_done=1)
        (folder / checkpoints.STATE).write_text(json.dumps(dataclasses.asdict(state)))
    monkeypatch.setenv("SLURM_RESTART_COUNT", "1")
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        cfg = compose("config", [f"mlflow.tracking_uri={store_uri}"])
    return cluster.adapt(cfg)


def test_a_restarted_job_resumes_the_run_it_opened(workdir, store_uri, monkeypatch):
    cfg = restarted_job(monkeypatch, store_uri, "abc123", checkpointed=True)
    assert cfg.trainer.resume == "abc123"


def test_a_job_restarted_before_its_first_checkpoint_trains_the_same_run_again(
    workdir, store_uri, monkeypatch
):
    """Never deleted: the run's logged epochs stay, tagged superseded (the cluster test below
    trains one through a real requeue)."""
    client = mlflow.MlflowClient(store_uri)
    run = client.create_run(client.create_experiment("experiments"))
    for step in (0, 1):
        client.log_metric(run.info.run_id, "epoch_time_s", 1.0, step=step)
    cfg = restarted_job(monkeypatch, store_uri, run.info.run_id, checkpointed=False)
    assert cfg.trainer.resume is None  # nothing to resume from
    restart = cluster.run_to_restart(store_uri)
    assert restart.run_id == run.info.run_id
    assert restart.tags["superseded_steps"] == "0-1"
    assert client.get_run(run.info.run_id).info.lifecycle_stage == "active"


SINFO = """debug*|2|1600|(null)|infinite
gpu|8|64000|gpu:a100:4(S:0-1)|2:00:00
gpu|16|128000|gpu:a100:4(S:0-1)|2:00:00
"""


def found_partitions():
    answer = subprocess.CompletedProcess([], 0, SINFO, "")
    return slurm_request.partitions(lambda *a, **k: answer)


def test_sinfo_gives_each_partitions_largest_node():
    found = found_partitions()
    assert list(found) == ["debug", "gpu"]
    assert found["debug"].default and not found["gpu"].default
    assert (found["gpu"].cpus, found["gpu"].memory_mb, found["gpu"].gpus) == (16, 128000, 4)
    assert found["gpu"].limit_min == 120 and found["debug"].limit_min is None
    failed = subprocess.CompletedProcess([], 1, "", "sinfo: error: no controller")
    assert slurm_request.partitions(lambda *a, **k: failed) is None  # sbatch judges then


@pytest.mark.parametrize(
    ("request_", "culprit", "fix"),
    [
        ({"partition": "cpu"}, "hydra.launcher.partition=cpu", "debug (the default), gpu"),
        ({"cpus_per_task": 4}, "hydra.launcher.cpus_per_task=4", "cpus_per_task=2"),
        ({"cpus_per_task": 2, "tasks_per_node": 2}, "cpus_per_task=2", "cpus_per_task=1"),
        ({"mem_gb": 8}, "hydra.launcher.mem_gb=8", "mem_gb=1"),
        ({"gpus_per_node": 1}, "hydra.launcher.gpus_per_node=1", "hydra/launcher=slurm"),
        ({"partition": "gpu", "gpus_per_node": 8}, "gpus_per_node=8", "gpus_per_node=4"),
        ({"partition": "gpu", "timeout_min": 240}, "timeout_min=240", "timeout_min=120"),
    ],
)
def test_a_request_no_node_meets_is_one_sentence_with_its_fix(request_, culprit, fix):
    with pytest.raises(ConfigError) as refused:
        slurm_request.check({"partition": None, **request_}, found_partitions())
    message = str(refused.value)
    assert message.split(": ", 1)[0].endswith(culprit), message  # the override to change
    assert fix in message and "\n" not in message


def test_a_request_the_nodes_meet_passes():
    fits = {"partition": "gpu", "cpus_per_task": 8, "mem_gb": 100, "gpus_per_node": 4}
    slurm_request.check({**fits, "timeout_min": 120}, found_partitions())
    slurm_request.check({"partition": None, "cpus_per_task": 1, "mem_gb": 1}, found_partitions())
    slurm_request.check({"partition": "anything", "cpus_per_task": 99}, None)  # no sinfo


@pytest.mark.slow
@pytest.mark.cluster
def test_a_wrong_partition_or_too_many_cpus_fail_in_one_line_before_the_sweep(
    workdir, slurm, tracking
):
    """The README's command on a cluster without its partition: one line, nothing queued,
    no parent run (it was a 40-line traceback and a KILLED parent). The preset's 4 CPUs on
    the 2-core node: refused, not PENDING for ever."""
    queued = slurm_command("squeue", "-h", "-o", "%i", env=slurm).split()  # earlier tests'
    for overrides, culprit in (
        (["hydra.launcher.partition=cpu"], "hydra.launcher.partition=cpu"),
        (["hydra.launcher.cpus_per_task=64"], "hydra.launcher.cpus_per_task=64"),
    ):
        result = run_cli(
            *SLURM, *overrides, "optimizer.lr=1e-3,1e-2", *TINY, *tracking, cwd=workdir, env=slurm
        )
        assert result.returncode == 2, result.stderr[-3000:]
        errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
        assert len(errors) == 1 and errors[0].startswith(f"error: {culprit}"), result.stderr
        assert "Traceback" not in result.stderr
        assert runs_of(tracking)[1] == []  # no parent run
        now = slurm_command("squeue", "-h", "-o", "%i", env=slurm).split()
        assert set(now) <= set(queued)  # nothing submitted


def test_scontrol_answers_as_sacct_would_for_submitit():
    shown = (
        "JobId=15 ArrayJobId=14 ArrayTaskId=1 JobState=CANCELLED Reason=None NodeList=n1\n"
        "JobId=14 ArrayJobId=14 ArrayTaskId=0 JobState=RUNNING Reason=None NodeList=n1\n"
        "JobId=14 ArrayJobId=14 ArrayTaskId=2-3%2 JobState=PENDING Reason=None NodeList=\n"
        "JobId=19 ArrayJobId=14 ArrayTaskId=5 JobState=CONFIGURING Reason=None NodeList=n1\n"
    )
    answer = subprocess.CompletedProcess([], 0, shown, "")
    jobs = ["14_0", "14_1", "14_3", "14_4", "14_5"]
    assert slurm_states.states(jobs, lambda *a, **k: answer) == {
        "14_0": ("RUNNING", "n1"),
        "14_1": ("CANCELLED", "n1"),
        "14_3": ("PENDING", ""),  # a range of tasks not started
        "14_4": ("UNKNOWN", ""),  # not listed (yet): still waited on
        "14_5": ("RUNNING", "n1"),  # a state submitit does not know would read as over
    }
    gone = subprocess.CompletedProcess([], 1, "", "slurm_load_jobs error: Invalid job id")
    assert slurm_states.states(["9"], lambda *a, **k: gone) == {"9": ("LOST", "")}


@pytest.mark.parametrize(
    ("ended", "state", "status"),
    [
        ("RUNNING", "FAILED", "FAILED"),  # killed with -9: the sweep ends its run
        ("RUNNING", "CANCELLED by 0", "KILLED"),
        ("KILLED", "CANCELLED by 0", "KILLED"),  # the job's own end (scancel's SIGTERM) stays
        # srun killed: SLURM's clean-up SIGTERM reached the job before the step's SIGKILL,
        # and the job ended its run KILLED; SLURM says the job failed, and so does the run.
        ("KILLED", "FAILED", "FAILED"),
        ("FAILED", "FAILED", "FAILED"),
    ],
)
def test_a_dead_jobs_run_ends_as_slurm_says_it_ended(store_uri, tmp_path, ended, state, status):
    client = mlflow.MlflowClient(store_uri)
    run = client.create_run("0")
    reason = f"SLURM job 7_1 ended {state} (exit code 137, SIGKILL) without a result"
    if ended != "RUNNING":
        client.set_tag(run.info.run_id, "failure_reason", "KeyboardInterrupt: stopped")
        client.set_terminated(run.info.run_id, ended, end_time=1_000)
    (tmp_path / sweeps.PARENT_FILE).write_text(json.dumps({"tracking_uri": store_uri}))
    slurm_watch._end_run(tmp_path, run.info.run_id, state, reason)
    after = client.get_run(run.info.run_id)
    assert after.info.status == status and after.data.tags["slurm.state"] == state
    if ended != status:  # the sweep ended it: SLURM's reason
        assert after.data.tags["failure_reason"] == reason
    else:  # the job's own end stays, with its own reason
        assert after.data.tags["failure_reason"] == "KeyboardInterrupt: stopped"
    if ended != "RUNNING":  # when the job ended it, not when the sweep found out
        assert after.info.end_time == 1_000


@pytest.mark.parametrize(
    ("exit_code", "said"),
    [
        ("137:0", "exit code 137, SIGKILL"),  # the batch script's srun, or its task, killed
        ("0:9", "signal 9, SIGKILL"),
        ("0:15", "signal 15, SIGTERM"),
        ("1:0", "exit code 1"),
        ("0:0", ""),
    ],
)
def test_how_a_job_ended_is_said_in_words(exit_code, said):
    shown = f"JobId=15 ArrayJobId=14 ArrayTaskId=1 JobState=FAILED ExitCode={exit_code}\n"
    answer = subprocess.CompletedProcess([], 0, shown, "")
    assert slurm_states.exit_detail("14_1", lambda *a, **k: answer) == said
    gone = subprocess.CompletedProcess([], 1, "", "slurm_load_jobs error: Invalid job id")
    assert slurm_states.exit_detail("14_1", lambda *a, **k: gone) == ""

    def no_scontrol(*args, **kwargs):
        raise FileNotFoundError("scontrol")

    assert slurm_states.exit_detail("14_1", no_scontrol) == ""


def test_a_sweep_asks_its_jobs_states_every_10_s_however_long_they_have_run(monkeypatch):
    from submitit.slurm.slurm import SlurmInfoWatcher, SlurmJob

    from hydra_plugins.experiments_slurm import slurm_launcher

    watcher = SlurmInfoWatcher(delay_s=600)  # submitit's, for SLURM jobs
    monkeypatch.setattr(SlurmJob, "watcher", watcher)
    asked = []
    monkeypatch.setattr(watcher, "update", lambda: asked.append(time.time()))
    now = time.time()
    watcher._start_time = now - 3600  # the sweep's last job was submitted an hour ago
    watcher._last_status_check = now - slurm_launcher.POLL_S - 1
    watcher.update_if_long_enough("standard")
    assert asked == []  # submitit alone waits min(600, 3600 / 2) s between two asks
    slurm_launcher._poll_often()  # as the launcher does before it submits
    watcher.update_if_long_enough("standard")
    assert len(asked) == 1


def test_jobs_that_died_together_wait_for_their_results_together(tmp_path, monkeypatch):
    """submitit waits 15 s for a result file, job after job; a sweep with three jobs
    cancelled at once waited 45 s. Counted from the poll that saw them over: 15 s."""
    import submitit.core.core as submitit_core
    from submitit.core.utils import UncompletedJobError
    from submitit.slurm.slurm import SlurmInfoWatcher, SlurmJob

    from hydra_plugins.experiments_slurm import slurm_launcher

    class Clock:  # submitit's and the launcher's clock: sleeping moves it, nothing waits
        now = 1_000_000.0

        def time(self):
            return self.now

        def sleep(self, seconds):
            self.now += seconds

    clock = Clock()
    monkeypatch.setattr(submitit_core, "_time", clock)
    monkeypatch.setattr(slurm_launcher, "time", clock)
    watcher = SlurmInfoWatcher(delay_s=600)
    monkeypatch.setattr(SlurmJob, "watcher", watcher)
    monkeypatch.setattr(watcher, "update", lambda: None)  # no SLURM: the states are set here
    jobs = [SlurmJob(tmp_path, f"7_{task}") for task in range(3)]
    with slurm_launcher._grace_from_the_end():
        for job in jobs:
            watcher._info_dict[job.job_id] = {"State": "CANCELLED"}
        watcher.update()  # the poll that sees them over
        started = clock.now
        for job in jobs:
            with pytest.raises(UncompletedJobError, match="has not produced any output"):
                job.results()
    assert clock.now - started == pytest.approx(SlurmJob._results_timeout_s, abs=1.5)
    assert SlurmJob._get_outcome_and_result is submitit_core.Job._get_outcome_and_result


def test_a_search_launching_trial_after_trial_says_once_that_sacct_cannot_answer(
    tmp_path, monkeypatch, caplog
):
    """The Optuna sweeper launches each trial on its own: the launcher asked sacct, and
    said it could not answer, at every trial (seen in a 6-trial SLURM search)."""
    from submitit.slurm.slurm import SlurmInfoWatcher, SlurmJob

    from hydra_plugins.experiments_slurm import slurm_launcher

    sacct = tmp_path / "sacct"
    sacct.write_text("#!/bin/sh\necho 'Slurm accounting storage is disabled' >&2\nexit 1\n")
    sacct.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}:{os.environ['PATH']}")
    monkeypatch.setattr(SlurmJob, "watcher", SlurmInfoWatcher(delay_s=600))
    with caplog.at_level("WARNING", logger=slurm_launcher.__name__):
        for _ in range(3):  # three trials
            slurm_launcher._follow_without_accounting()
    said = [r.getMessage() for r in caplog.records if "sacct cannot report" in r.getMessage()]
    assert len(said) == 1 and "accounting storage is disabled" in said[0]


def test_a_job_pending_for_good_is_said_once_with_what_starts_it(caplog):
    asked = []

    def squeue(command, **kwargs):
        asked.append(command)
        lines = "21_0|Resources\n21_1|JobHeldUser\n22|PartitionConfig\n23|QOSMaxCpuPerJobLimit\n"
        return subprocess.CompletedProcess(command, 0, lines, "")

    report = slurm_pending.Reporter(squeue)
    with caplog.at_level("WARNING"):
        report(["21_0", "21_1", "22", "23"])
        report(["21_0", "21_1", "22", "23"])  # the next poll: nothing said twice
    assert asked[0][-2:] == ["-j", "21,22,23"] and "-r" in asked[0]  # array tasks one by one
    said = [r.getMessage() for r in caplog.records]
    assert len(said) == 3 and not any("21_0" in line for line in said)  # Resources clears
    assert "SLURM job 21_1 is PENDING (JobHeldUser)" in said[0]
    assert "scontrol release 21_1" in said[0] and slurm_pending.STOP in said[0]
    assert "hydra.launcher.cpus_per_task" in said[1] and "QOS" in said[2]
    assert slurm_pending.pending([], squeue) == {}


@pytest.mark.slow
@pytest.mark.cluster
def test_a_sweep_is_one_parent_and_jobs_cancelled_or_killed_fail_with_its_summary(
    workdir, slurm, tracking, fashion_dir
):
    """A SLURM sweep is one parent with its jobs as children, each job's TensorFlow on the
    cores SLURM gave it. No accounting here: a job that left the queue without a result
    used to keep the sweep waiting for ever. Now each fails within a minute, with one line
    saying how (SLURM's state, and the signal), its run ends, and the sweep ends with its
    summary. Four jobs, two at a time on the 2-core node:
    - #0, of 1 epoch, finishes;
    - #1 is cancelled (``scancel``) once its run is open: its run ends KILLED;
    - #2's Python and #3's ``srun`` are killed (``kill -9``): their runs end FAILED.
    (One sweep for what were two tests.)"""
    before = set(slurm_command("squeue", "-h", "-r", "-o", "%i", env=slurm).split())
    overrides = ("trainer.epochs=1,40,41,42", "dataset.limit=1000", *tracking)

    def open_runs() -> set[str]:
        """The epochs of the jobs whose runs are open (and have logged their parameters)."""
        return {r.data.params.get("trainer.epochs") for r in children(tracking)} - {None}

    def ours() -> dict[str, str]:
        """This sweep's jobs in the queue: array task (1_2) -> the id it runs as (4)."""
        listed = slurm_command("squeue", "-h", "-r", "-o", "%i %A", env=slurm).splitlines()
        return {task: id_ for task, id_ in (line.split() for line in listed) if task not in before}

    with sweep(workdir, slurm, *overrides) as process:
        deadline = time.monotonic() + 300
        while not {"1", "40"} <= open_runs():
            assert process.poll() is None and time.monotonic() < deadline, open_runs()
            time.sleep(0.5)
        [cancelled] = [task for task in ours() if task.endswith("_1")]
        slurm_command("scancel", cancelled, env=slurm)
        while not {"41", "42"} <= open_runs():  # #2 and #3 start in the slots left
            assert process.poll() is None and time.monotonic() < deadline, open_runs()
            time.sleep(0.5)
        queued = ours()
        [python_killed] = [task for task in queued if task.endswith("_2")]
        [srun_killed] = [task for task in queued if task.endswith("_3")]
        os.kill(job_process(slurm, queued[python_killed], "python"), signal.SIGKILL)
        os.kill(job_process(slurm, queued[srun_killed], "srun"), signal.SIGKILL)
        killed = time.monotonic()
        stdout, stderr = process.communicate(timeout=240)
    print(f"\nkill -9: the sweep ended {time.monotonic() - killed:.1f} s after")
    assert time.monotonic() - killed < 90  # a minute to find them, then the summary
    assert process.returncode == 1, stderr[-3000:]  # jobs failed: the command says so
    said = stdout + stderr
    expected = {
        cancelled: ("trainer.epochs=40 ", "CANCELLED"),
        python_killed: ("trainer.epochs=41 ", "FAILED (exit code 137, SIGKILL)"),
        srun_killed: ("trainer.epochs=42 ", "FAILED (exit code 137, SIGKILL)"),
    }
    for job, (override, how) in expected.items():
        lines = [line for line in said.splitlines() if f"SLURM job {job} " in line]
        assert len(lines) == 2, lines  # when found, and in the summary's list of failures
        for line in lines:
            assert override in line and f"SLURM job {job} ended {how}" in line, line
    _, runs = runs_of(tracking)
    [parent] = [r for r in runs if r.data.tags.get("experiments.kind") == "sweep"]
    assert parent.info.status == "FINISHED" and parent.data.tags["failed_jobs"] == "3"
    jobs = children(tracking)
    assert {r.data.tags["mlflow.parentRunId"] for r in jobs} == {parent.info.run_id}
    by_epochs = {r.data.params["trainer.epochs"]: r for r in jobs}
    assert by_epochs["1"].info.status == "FINISHED"
    assert by_epochs["40"].info.status == "KILLED"
    assert by_epochs["40"].data.tags["slurm.state"].startswith("CANCELLED")
    for epochs in ("41", "42"):
        run = by_epochs[epochs]
        assert run.info.status == "FAILED" and run.data.tags["slurm.state"] == "FAILED"
        assert "SIGKILL" in run.data.tags["failure_reason"], run.data.tags["failure_reason"]
    # TensorFlow's threads follow SLURM's cores per task, not the node's two.
    assert {r.data.params["runtime.threads"] for r in jobs} == {"1"}
    # No accounting store here: one line says so, instead of a warning at every poll.
    assert "Bypassing sacct error" not in said
    assert said.count("sacct cannot report job states here") == 1
    [err] = [p.read_text() for p in workdir.rglob(f"{cancelled}_0_log.err")]  # the job's own
    [out] = [p.read_text() for p in workdir.rglob(f"{cancelled}_0_log.out")]
    assert "Traceback" not in err and "SLURM stopped the job" in out + err, err[-3000:]


@pytest.mark.slow
@pytest.mark.cluster
def test_stopping_a_slurm_sweep_cancels_its_jobs_and_ends_their_runs_killed(
    workdir, slurm, tracking, fashion_dir
):
    """SIGTERM of the sweep (as Ctrl-C): its jobs used to run on and log under a KILLED
    parent. Three jobs, one slot each on the 2-core node: two running, the third queued,
    then held (by root here: JobHeldAdmin), which the sweep says (a job PENDING for good
    was waited on in silence)."""
    before = set(slurm_command("squeue", "-h", "-o", "%i", env=slurm).split())
    lrs = "optimizer.lr=1e-3,1e-2,3e-3"
    overrides = (lrs, "dataset.limit=3000", "trainer.epochs=40", *tracking)
    output = workdir / "sweep.out"
    with sweep(workdir, slurm, *overrides, output=output) as process:
        wait_for_epochs(tracking, process, 1)
        ours = set(slurm_command("squeue", "-h", "-o", "%i", env=slurm).split()) - before
        queued = slurm_command("squeue", "-h", "-t", "PENDING", "-r", "-o", "%i", env=slurm)
        [held] = set(queued.split()) & ours
        slurm_command("scontrol", "hold", held, env=slurm)
        deadline = time.monotonic() + 90  # the watcher polls every few seconds, then 60 s
        while f"SLURM job {held} is PENDING (JobHeld" not in output.read_text():
            assert time.monotonic() < deadline, output.read_text()[-3000:]
            time.sleep(0.5)
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=120)
    said = output.read_text()
    assert process.returncode != 0
    assert said.count(f"SLURM job {held} is PENDING (JobHeld") == 1, said[-3000:]
    assert "cancelled SLURM job(s)" in said, said[-3000:]
    deadline = time.monotonic() + 60  # SLURM's SIGTERM reaches the jobs; KillWait is 30 s
    while set(slurm_command("squeue", "-h", "-o", "%i", env=slurm).split()) & ours:
        assert time.monotonic() < deadline, "the sweep's jobs still run"
        time.sleep(0.5)
    _, runs = runs_of(tracking)
    [parent] = [r for r in runs if r.data.tags.get("experiments.kind") == "sweep"]
    assert parent.info.status == "KILLED"
    jobs = children(tracking)
    assert len(jobs) == 2 and {r.info.status for r in jobs} == {"KILLED"}
