"""``mlflow server`` on PostgreSQL, with sign-in (``--app-name basic-auth``) and artifacts
kept and served by the server (``--serve-artifacts``): clients need no shared disk.

Every secret reaches the server through its environment or a mode-600 file, never its
command line: the store's URI (``MLFLOW_BACKEND_STORE_URI``), the admin's first password
(``MLFLOW_AUTH_ADMIN_PASSWORD``, read once, when the user table is empty), the session
key (``MLFLOW_FLASK_SERVER_SECRET_KEY``) and the sign-in database (``auth.ini``).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from experiments.errors import ConfigError
from experiments.labserver import process, secrets

ADMIN = "admin"
# MLflow 3's server also starts a job runner and a Huey consumer process per kind of job
# (its GenAI evaluations, scorers and trace roll-ups), which a lab that tracks runs never uses:
# 23 processes and 40-43 CPU seconds at start against 7 and 9 without them (2-core AMD
# EPYC, 2026-12-05). Left off unless the environment says MLFLOW_SERVER_ENABLE_JOB_EXECUTION.
WITHOUT_JOBS = {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
AUTH_FUNCTION = "mlflow.server.auth:authenticate_request_basic_auth"


def auth_config(folder: Path, database_uri: str) -> Path:
    """MLflow's sign-in settings: users and permissions in PostgreSQL, READ for others."""
    path = secrets.secret_path(folder, "auth.ini")
    secrets.write_private(
        path,
        "[mlflow]\n"
        "default_permission = READ\n"  # a lab reads each other's runs; only owners write
        f"database_uri = {database_uri}\n"
        f"admin_username = {ADMIN}\n"
        f"authorization_function = {AUTH_FUNCTION}\n"
        "grant_default_workspace_access = false\n"
        # A checked password is remembered for a minute: without it each request pays a
        # PBKDF2 hash (a run makes hundreds). A password changed or a user removed takes
        # effect on the other workers within that minute.
        "auth_cache_ttl_seconds = 60\n",
    )
    return path


def start(folder: Path, host: str, port: int, workers: int, env: dict[str, str], auth: bool):
    """Start the server in a session of its own; wait until it answers. Its ``Started``."""
    command = [sys.executable, "-m", "mlflow", "server", "--host", host, "--port", str(port)]
    command += ["--artifacts-destination", str(folder / "artifacts"), "--serve-artifacts"]
    command += ["--workers", str(workers)]
    if auth:
        command += ["--app-name", "basic-auth"]
    log = folder / "mlflow-server.log"
    with open(log, "ab") as output:
        child = subprocess.Popen(
            command,
            env={**WITHOUT_JOBS, **os.environ, **env},
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own group: stop ends its workers with it
            cwd=folder,
        )
    started = process.started(child.pid)
    url = f"http://{'127.0.0.1' if host in ('0.0.0.0', '::') else host}:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if child.poll() is not None:
            raise ConfigError("mlflow server", f"exited at start: {_last_line(log)} (see {log})")
        if answers(url):
            return started
        time.sleep(0.5)
    started.stop()
    raise ConfigError("mlflow server", f"did not answer within 120 s (see {log})")


def answers(url: str) -> bool:
    try:
        urllib.request.urlopen(f"{url}/health", timeout=2).close()
        return True
    except OSError:
        return False


def _last_line(log: Path) -> str:
    lines = [line for line in log.read_text(errors="replace").splitlines() if line.strip()]
    return lines[-1].strip() if lines else "no output"
