"""Helpers for tests that drive the real command line."""

from __future__ import annotations

import contextlib
import io
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from experiments.labserver import mlflow_server


def user_environment() -> dict[str, str]:
    """This process's environment as a user's shell would have it.

    Without PYTEST_CURRENT_TEST: MLflow switches on checks of its own test suite when it
    sees that variable, and the commands under test must run as they do for users.
    """
    return {k: v for k, v in os.environ.items() if k != "PYTEST_CURRENT_TEST"}


def run_cli(*overrides: str, cwd: Path, env: dict | None = None, module: str = "experiments"):
    """Run ``python -m <module> overrides...`` as a user would; return the CompletedProcess."""
    full_env = {**user_environment(), "TF_CPP_MIN_LOG_LEVEL": "2", **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", module, *overrides],
        cwd=cwd,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=600,
    )


def in_process(main, *args: str, cwd: Path, env: dict | None = None):
    """Call a command's ``main(argv)`` here, as ``run_cli`` would run it; the CompletedProcess.

    For tests of what a command prints and returns, where starting Python and TensorFlow
    anew (5 s) is not what is tested. The working folder and ``env`` are set for the call.
    """
    import isolation

    from experiments.commands import quiet

    # Here, not inside the call: the quiet import redirects file descriptor 2 while it runs.
    quiet.import_tensorflow()
    out, err = io.StringIO(), io.StringIO()
    saved_env, saved_cwd = dict(os.environ), Path.cwd()
    os.environ.update(env or {})
    os.chdir(cwd)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                main(list(args))
                code = 0
            except SystemExit as exit_:
                code = exit_.code if isinstance(exit_.code, int) else 1
    finally:
        os.chdir(saved_cwd)
        isolation.reset_mlflow_uri()  # a command may pin MLflow's URI, which also exports it
        os.environ.clear()
        os.environ.update(saved_env)
    return subprocess.CompletedProcess(
        [main.__module__, *args], code, out.getvalue(), err.getvalue()
    )


@contextlib.contextmanager
def _logged_to(stream):
    """The log on ``stream`` as Hydra's console handler writes it (for ``app_main``)."""
    import logging

    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("[%(asctime)s][%(name)s][%(levelname)s] - %(message)s"))
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        yield
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


def app_main(argv: list[str]) -> None:
    """``python -m experiments`` with ``argv``, in this process (for ``in_process``).

    Hydra's logging set-up is left out: ``logging.config.dictConfig`` closes every handler
    in the process, pytest's capture among them. The log goes to standard output all the
    same, as Hydra's console handler sends it.
    """
    from experiments.commands import app

    saved = sys.argv
    sys.argv = ["experiments", *argv, "hydra/job_logging=none", "hydra/hydra_logging=none"]
    try:
        with _logged_to(sys.stdout):
            app.main()
    finally:
        sys.argv = saved


def first_epoch_run_id(client, process, timeout: float = 120) -> str | None:
    """The id of the run ``process`` opened, once it has logged its first epoch (or None)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None:
        try:
            experiment = client.get_experiment_by_name("experiments")
            runs = client.search_runs([experiment.experiment_id]) if experiment else []
        except Exception:  # the store is being created
            runs = []
        if runs and client.get_metric_history(runs[0].info.run_id, "val_accuracy"):
            return runs[0].info.run_id
        time.sleep(0.2)
    return None


def killed_after_first_epoch(client, *overrides: str, cwd: Path):
    """Start ``python -m experiments overrides...``, send SIGTERM once its run has logged an
    epoch; return the run's id (None if it never logged one) and what the process printed."""
    process = subprocess.Popen(
        [sys.executable, "-m", "experiments", *overrides],
        cwd=cwd,
        env=user_environment(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    run_id = first_epoch_run_id(client, process)
    process.send_signal(signal.SIGTERM)
    stdout, stderr = process.communicate(timeout=60)
    return run_id, subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


def resume_cli(run_id: str, store_uri: str, cwd: Path, *overrides: str):
    """``trainer.resume=<run_id>`` as the command line gives it, quietly, against
    ``store_uri``; in this process (``in_process``): what a resume does is not about
    starting Python, and the run it resumes was killed in a process of its own."""
    return in_process(
        app_main,
        f"trainer.resume={run_id}",
        "trainer.verbose=0",
        f"mlflow.tracking_uri={store_uri}",
        *overrides,
        cwd=cwd,
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(tmp_path) -> tuple[str, subprocess.Popen]:
    """A real `mlflow server` on loopback with its store in ``tmp_path``; its URL and process."""
    port = free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mlflow",
            "server",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--backend-store-uri",
            f"sqlite:///{tmp_path / 'server.db'}",
            "--artifacts-destination",
            str(tmp_path / "server-artifacts"),
            "--workers",
            "1",
        ],
        # As the lab server runs it (labserver/mlflow_server.py): without MLflow's job
        # runner, whose processes cost each server 30 CPU seconds and no test uses.
        env={**mlflow_server.WITHOUT_JOBS, **user_environment()},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # its workers in one process group, to stop them all
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"{url}/health", timeout=1)
            break
        except OSError:
            time.sleep(0.5)
    else:
        stop(process, signal.SIGKILL)
        pytest.fail("mlflow server did not start within 60 s")
    return url, process


def stop(server: subprocess.Popen, how: int) -> None:
    """Stop the server and its workers."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(server.pid, how)
    server.wait(timeout=30)
