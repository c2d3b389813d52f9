"""The lab server: real PostgreSQL, MLflow's sign-in, artifacts through the server.

One server for the module (``python -m experiments.server start``, as a user starts it);
the tests sign in as the admin and as users the admin made. Without PostgreSQL installed
they skip, except in CI, which installs it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import isolation
import mlflow
import pytest
from helpers import free_port, in_process, run_cli, user_environment

from experiments.commands import server as server_command
from experiments.labserver import postgres

ADMIN_PASSWORD = "correct-horse-battery-staple"
ALICE = ("alice", "alice-lab-password-42")
BOB = ("bob", "bob-lab-password-42")
TINY = [
    "dataset.limit=64",
    "trainer.epochs=2",
    "trainer.verbose=0",
    "cost=quick",
    "interpretation=off",
    "mlflow.samples=2",
]


def _postgres_or_skip() -> None:
    try:
        postgres.binaries()
    except Exception:
        if os.environ.get("CI"):
            pytest.fail("PostgreSQL is missing: apt-get install postgresql")
        pytest.skip("PostgreSQL not installed (apt-get install postgresql)")


def _server_cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "experiments.server", *args],
        env={**user_environment(), **(env or {})},
        capture_output=True,
        text=True,
        timeout=300,
    )


def _signed_in(user: tuple[str, str]) -> dict[str, str]:
    return {"MLFLOW_TRACKING_USERNAME": user[0], "MLFLOW_TRACKING_PASSWORD": user[1]}


class Lab:
    def __init__(self, folder: Path, port: int):
        self.folder, self.url = folder, f"http://127.0.0.1:{port}"

    def client(self, user: tuple[str, str] = ("admin", ADMIN_PASSWORD)):
        """An MLflow client of ``user``: MLflow reads the credentials from the environment."""
        os.environ.update(_signed_in(user))
        return mlflow.MlflowClient(self.url)

    def cluster(self) -> postgres.Cluster:
        state = json.loads((self.folder / "server.json").read_text())
        return postgres.Cluster(self.folder / "postgres", state["postgres_port"])


@pytest.fixture(scope="module")
def lab():
    _postgres_or_skip()
    # PostgreSQL runs as the 'postgres' user when the tests run as root: its folder must be
    # reachable by that user, which pytest's own (mode 700) is not.
    root = Path(tempfile.mkdtemp(prefix="experiments-lab-"))
    root.chmod(0o711)
    port = free_port()
    folder = root / "server"
    started = _server_cli(
        "start",
        f"folder={folder}",
        f"port={port}",
        "workers=1",
        env={"MLFLOW_AUTH_ADMIN_PASSWORD": ADMIN_PASSWORD},
    )
    assert started.returncode == 0, started.stdout + started.stderr
    lab = Lab(folder, port)
    from mlflow.server import get_app_client

    saved = dict(os.environ)
    os.environ.update(_signed_in(("admin", ADMIN_PASSWORD)))
    admin = get_app_client("basic-auth", tracking_uri=lab.url)
    for user in (ALICE, BOB):
        admin.create_user(*user)
    os.environ.clear()
    os.environ.update(saved)
    yield lab
    _server_cli("stop", f"folder={folder}")
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def as_user(monkeypatch):
    """Restore the environment's credentials after a test that signs in (``Lab.client``).

    ``setenv`` first: ``delenv`` of a variable that is not set records nothing to restore,
    and the credentials a test then sets would stay for the worker's next tests.
    """
    for key in ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD"):
        monkeypatch.setenv(key, "")
        monkeypatch.delenv(key)
    yield


def test_the_server_never_starts_with_a_default_or_missing_password(tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_AUTH_ADMIN_PASSWORD", raising=False)
    folder = f"folder={tmp_path / 'server'}"
    missing = in_process(server_command.main, "start", folder, cwd=tmp_path)
    assert missing.returncode == 2
    assert missing.stderr.count("\n") == 1 and "MLFLOW_AUTH_ADMIN_PASSWORD" in missing.stderr
    weak = in_process(
        server_command.main,
        "start",
        folder,
        cwd=tmp_path,
        env={"MLFLOW_AUTH_ADMIN_PASSWORD": "password1234"},
    )
    assert weak.returncode == 2 and "too easy to guess" in weak.stderr
    shared = tmp_path / "password"
    shared.write_text(ADMIN_PASSWORD)
    shared.chmod(0o644)
    readable = in_process(
        server_command.main, "start", folder, f"password_file={shared}", cwd=tmp_path
    )
    assert readable.returncode == 2 and f"chmod 600 {shared}" in readable.stderr
    # An open server on the network needs the flag that names the risk.
    open_ = in_process(
        server_command.main, "start", folder, "auth=false", "host=0.0.0.0", cwd=tmp_path
    )
    assert open_.returncode == 2
    assert "allow_open_network_without_sign_in=true" in open_.stderr
    assert not (tmp_path / "server").exists()  # refused before anything was made


@pytest.mark.slow
def test_a_signed_in_run_lands_with_its_artifacts_and_no_credential_anywhere(
    lab, workdir, fashion_dir, as_user
):
    result = run_cli(
        *TINY,
        f"mlflow.tracking_uri={lab.url}",
        "mlflow.experiment_name=alice",
        cwd=workdir,
        env=_signed_in(ALICE),
    )
    assert result.returncode == 0, result.stderr[-3000:]
    client = lab.client(ALICE)
    experiment = client.get_experiment_by_name("alice")
    [run] = client.search_runs([experiment.experiment_id])
    assert run.info.status == "FINISHED"
    assert run.info.artifact_uri.startswith("mlflow-artifacts:")  # through the server
    for key in ("loss", "val_accuracy"):
        assert [m.step for m in client.get_metric_history(run.info.run_id, key)] == [0, 1]
    downloaded = Path(
        mlflow.artifacts.download_artifacts(
            run_id=run.info.run_id, tracking_uri=lab.url, dst_path=str(workdir / "downloaded")
        )
    )
    assert (downloaded / "plots" / "learning_curves.png").stat().st_size > 0
    mlflow.set_tracking_uri(lab.url)
    try:
        model = mlflow.pyfunc.load_model(f"runs:/{run.info.run_id}/model")  # through the server
    finally:
        isolation.reset_mlflow_uri()
    assert model.metadata.metadata["class_names"]
    # The password is nowhere: not printed, not in a param, tag or file the run wrote.
    secret = ALICE[1]
    assert secret not in result.stdout + result.stderr
    values = [*run.data.params.values(), *run.data.tags.values()]
    assert not [value for value in values if secret in value]
    written = [p for p in workdir.rglob("*") if p.is_file()]
    assert written and not [p for p in written if secret.encode() in p.read_bytes()]
    log = (lab.folder / "mlflow-server.log").read_bytes()
    assert secret.encode() not in log and ADMIN_PASSWORD.encode() not in log


@pytest.mark.slow
def test_a_wrong_password_or_a_missing_permission_is_one_sentence_before_training(
    lab, workdir, fashion_dir, as_user
):
    lab.client(ALICE).create_experiment("alice-only")
    denied = run_cli(
        *TINY,
        f"mlflow.tracking_uri={lab.url}",
        "mlflow.experiment_name=alice-only",
        cwd=workdir,
        env=_signed_in(BOB),
    )
    assert denied.returncode == 2
    last = denied.stderr.strip().splitlines()[-1]
    assert last.startswith("error: mlflow.experiment_name=alice-only: user 'bob' may not log")
    assert "EDIT permission" in last
    wrong = run_cli(
        *TINY,
        f"mlflow.tracking_uri={lab.url}",
        cwd=workdir,
        env=_signed_in((ALICE[0], "not-her-password")),
    )
    assert wrong.returncode == 2
    last = wrong.stderr.strip().splitlines()[-1]
    assert "the server refused the sign-in of user 'alice'" in last
    assert "MLFLOW_TRACKING_PASSWORD" in last and "not-her-password" not in wrong.stderr
    for result in (denied, wrong):  # refused before a single image was read
        assert "Data:" not in result.stdout + result.stderr
    client = lab.client(ALICE)
    assert client.search_runs([client.get_experiment_by_name("alice-only").experiment_id]) == []


@pytest.mark.slow
def test_a_database_outage_mid_run_loses_no_metric(lab, workdir, fashion_dir, as_user):
    """PostgreSQL itself stops for a while: training goes on, and every epoch arrives."""
    env = {**user_environment(), **_signed_in(ALICE)}
    command = [
        sys.executable,
        "-m",
        "experiments",
        "dataset.limit=3000",
        "trainer.epochs=16",
        "trainer.verbose=0",
        "cost=quick",
        "interpretation=off",
        "mlflow.samples=2",
        f"mlflow.tracking_uri={lab.url}",
        "mlflow.experiment_name=outage",
    ]
    training = subprocess.Popen(
        command, cwd=workdir, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    client = lab.client(ALICE)
    deadline = time.monotonic() + 180
    run_id = None
    while run_id is None and time.monotonic() < deadline and training.poll() is None:
        experiment = client.get_experiment_by_name("outage")
        runs = client.search_runs([experiment.experiment_id]) if experiment else []
        if runs and client.get_metric_history(runs[0].info.run_id, "val_accuracy"):
            run_id = runs[0].info.run_id
        time.sleep(0.3)
    assert run_id, training.communicate()[1][-3000:]
    cluster = lab.cluster()
    postgres.stop(cluster)
    time.sleep(8)  # epochs end while the database is down; the run goes on for 15 s more
    postgres.start(cluster)
    stdout, stderr = training.communicate(timeout=300)
    assert training.returncode == 0, stderr[-3000:]
    assert "answers again" in stdout + stderr
    run = client.get_run(run_id)
    assert run.info.status == "FINISHED"
    for key in ("loss", "val_accuracy", "val_loss"):
        steps = [m.step for m in client.get_metric_history(run_id, key)]
        assert sorted(steps) == list(range(16)), (key, steps)
    assert not (workdir / "unsent" / run_id).exists()


@pytest.mark.slow
def test_stop_ends_exactly_what_start_started(lab, as_user):
    """The module's last test: the fixture's own stop then finds nothing left to stop.

    That a restarted server keeps its runs is shown by the database outage above (the
    cluster stopped and started) and by benchmarks/lab_server_load.py (the whole server).
    """
    state = json.loads((lab.folder / "server.json").read_text())
    server_pid = state["mlflow"]["pid"]
    postmaster = int((lab.cluster().data / "postmaster.pid").read_text().split()[0])
    started = _session(server_pid)  # the server's own session (start_new_session)
    assert any("mlflow server" in line for line in started.values()), started
    # Without MLflow's job runner and its Huey consumers (labserver/mlflow_server.py).
    assert not [line for line in started.values() if "huey" in line or "jobs." in line], started
    bystander = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        stopped = _server_cli("stop", f"folder={lab.folder}")
        assert stopped.returncode == 0, stopped.stderr
        for pid in (server_pid, postmaster):
            assert not Path(f"/proc/{pid}").exists() or _zombie(pid), pid
        deadline = time.monotonic() + 10  # its workers end with it, a moment after
        while (left := _session(server_pid, alive=True)) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not left, left
        assert bystander.poll() is None  # another program lives on
        status = _server_cli("status", f"folder={lab.folder}")
        assert status.returncode == 1 and "stopped" in status.stdout
    finally:
        bystander.kill()
        bystander.wait()


def _session(sid: int, alive: bool = False) -> dict[int, str]:
    """The command lines of the processes in session ``sid`` (``alive``: not zombies)."""
    found = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                if alive and fields[0] == "Z":
                    continue
                if int(fields[3]) == sid:  # after the name: state, ppid, pgrp, session
                    found[int(entry.name)] = (
                        (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
                    )
            except OSError:
                continue
    return found


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True
