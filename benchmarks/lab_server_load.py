"""Many jobs logging at once, with a server restart in the middle: what each store keeps.

    python benchmarks/lab_server_load.py            # the three stores, ~10 min on 2 cores
    python benchmarks/lab_server_load.py --write    # and into RESULTS.md, this CPU's section
    python benchmarks/lab_server_load.py --stores postgres

The load, started together on this machine: 8 ``python -m experiments`` processes, a sweep
of 8 jobs on the joblib launcher (2 at a time) and a sweep of 4 jobs as a SLURM array on
the local one-node SLURM (``scripts/local_slurm.sh``; root only, skipped without it).
Every job: the compact CNN, 500 Fashion-MNIST images, 3 epochs, its model logged.
Once the 8 processes have each logged an epoch, the server is restarted (the lab server by
``experiments.server stop`` then ``start``: PostgreSQL too), in the middle of the logging.
The stores:

- ``postgres``: the lab server, ``python -m experiments.server`` (PostgreSQL, sign-in,
  artifacts through the server), every job signed in;
- ``sqlite-server``: ``mlflow server`` on a SQLite file (the old recipe), no sign-in;
- ``sqlite-file``: every job writes the SQLite file itself (no server, so no restart).

Then every run is read back: FINISHED or not, each epoch's metrics present exactly once,
and its learning-curve plot downloaded through the store.
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from common import ROOT, cpu_kind, environment, machine  # noqa: E402
from results import write_part  # noqa: E402

EPOCHS, PROCESSES, JOBLIB, SLURM_JOBS = 3, 8, 8, 4
CURVES = ("loss", "accuracy", "val_loss", "val_accuracy")
JOB = [
    "dataset.limit=500",
    f"trainer.epochs={EPOCHS}",
    "trainer.verbose=0",
    "cost=quick",
    "interpretation=off",
    "mlflow.samples=2",
]
STORES = ("postgres", "sqlite-server", "sqlite-file")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def python(*args: str) -> list[str]:
    return [sys.executable, *args]


class Store:
    """One store under test: its URI, the environment jobs need, and how to restart it."""

    def __init__(self, kind: str, root: Path):
        self.kind, self.root, self.env = kind, root, {}
        self.port = free_port()
        self.server = None
        if kind == "sqlite-file":
            self.uri = f"sqlite:///{root / 'mlflow.db'}"
            return
        self.uri = f"http://127.0.0.1:{self.port}"
        if kind == "postgres":
            password = secrets.token_urlsafe(16)
            self.env = {
                "MLFLOW_TRACKING_USERNAME": "admin",
                "MLFLOW_TRACKING_PASSWORD": password,
                "MLFLOW_AUTH_ADMIN_PASSWORD": password,
            }
        self.start()

    def start(self) -> None:
        if self.kind == "postgres":
            command = python(
                "-m",
                "experiments.server",
                "start",
                f"folder={self.root / 'lab'}",
                f"port={self.port}",
            )
            subprocess.run(
                command, env={**environment(), **self.env}, check=True, capture_output=True
            )
            return
        command = python(
            "-m",
            "mlflow",
            "server",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--backend-store-uri",
            f"sqlite:///{self.root / 'server.db'}",
            "--artifacts-destination",
            str(self.root / "artifacts"),
            "--serve-artifacts",
            "--workers",
            "2",
        )
        self.server = subprocess.Popen(
            command,
            env=environment(),
            start_new_session=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.5)
        raise SystemExit(f"{self.kind}: the server did not start")

    def stop(self) -> None:
        if self.kind == "postgres":
            subprocess.run(
                python("-m", "experiments.server", "stop", f"folder={self.root / 'lab'}"),
                env=environment(),
                capture_output=True,
            )
        elif self.server is not None:
            os.killpg(self.server.pid, signal.SIGTERM)
            self.server.wait(timeout=60)

    def restart(self) -> float:
        begun = time.monotonic()
        self.stop()
        self.start()
        return time.monotonic() - begun


def start_slurm(root: Path) -> dict[str, str] | None:
    if os.geteuid() != 0 or not shutil.which("slurmctld"):
        return None
    env = {
        **environment(),
        "LOCAL_SLURM_DIR": str(root / "slurm"),
        "LOCAL_SLURM_CTLD_PORT": str(free_port()),
        "LOCAL_SLURM_SLURMD_PORT": str(free_port()),
    }
    (root / "slurm").mkdir()
    subprocess.run(
        [str(ROOT / "scripts" / "local_slurm.sh"), "start"],
        env=env,
        check=True,
        capture_output=True,
    )
    return {**env, "SLURM_CONF": str(root / "slurm" / "slurm.conf")}


def launch(store: Store, root: Path, slurm: dict | None) -> list[tuple[str, subprocess.Popen]]:
    env = {**environment(), **store.env, **(slurm or {})}
    tracking = [f"mlflow.tracking_uri={store.uri}"]
    started = []
    for seed in range(1, PROCESSES + 1):
        folder = root / f"process-{seed}"
        folder.mkdir()
        args = [*JOB, *tracking, f"seed={seed}", "mlflow.experiment_name=processes"]
        started.append((f"process {seed}", _popen(python("-m", "experiments", *args), folder, env)))
    seeds = ",".join(str(s) for s in range(1, JOBLIB + 1))
    joblib = [
        "-m",
        "hydra/launcher=joblib",
        "hydra.launcher.n_jobs=2",
        f"seed={seeds}",
        *JOB,
        *tracking,
        "mlflow.experiment_name=joblib",
    ]
    (root / "joblib").mkdir()
    started.append(
        ("joblib sweep", _popen(python("-m", "experiments", *joblib), root / "joblib", env))
    )
    if slurm:
        seeds = ",".join(str(s) for s in range(1, SLURM_JOBS + 1))
        array = [
            "-m",
            "hydra/launcher=slurm",
            "hydra.launcher.cpus_per_task=1",
            "hydra.launcher.mem_gb=2",
            f"seed={seeds}",
            *JOB,
            *tracking,
            "mlflow.experiment_name=slurm",
        ]
        (root / "slurm-sweep").mkdir()
        started.append(
            ("SLURM array", _popen(python("-m", "experiments", *array), root / "slurm-sweep", env))
        )
    return started


def _popen(command: list[str], cwd: Path, env: dict) -> subprocess.Popen:
    log = open(cwd / "output.log", "w")  # noqa: SIM115 - closed with the process
    return subprocess.Popen(command, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT)


def read_back(store: Store, root: Path, slurm: bool) -> dict:
    """Every run of the three experiments: status, epochs present once, plot downloadable."""
    import mlflow

    os.environ.update({k: v for k, v in store.env.items() if k.startswith("MLFLOW_TRACKING")})
    client = mlflow.MlflowClient(store.uri)
    expected = {
        "processes": PROCESSES,
        "joblib": JOBLIB,
        **({"slurm": SLURM_JOBS} if slurm else {}),
    }
    found = {
        "expected": sum(expected.values()),
        "finished": 0,
        "lost": 0,
        "duplicated": 0,
        "downloaded": 0,
    }
    for name in expected:
        experiment = client.get_experiment_by_name(name)
        runs = client.search_runs([experiment.experiment_id]) if experiment else []
        runs = [r for r in runs if r.data.tags.get("experiments.kind") != "sweep"]
        for run in runs:
            found["finished"] += run.info.status == "FINISHED"
            for key in CURVES:
                steps = [m.step for m in client.get_metric_history(run.info.run_id, key)]
                found["lost"] += len(set(range(EPOCHS)) - set(steps))
                found["duplicated"] += len(steps) - len(set(steps))
            try:
                client.download_artifacts(
                    run.info.run_id,
                    "plots/learning_curves.png",
                    str(root / "downloads" / run.info.run_id),
                )
                found["downloaded"] += 1
            except Exception:  # noqa: BLE001 - counted: the table says how many failed
                pass
        found["lost"] += (expected[name] - len(runs)) * EPOCHS * len(CURVES)  # runs never made
    return found


def opened_all(store: Store, experiment: str, count: int, timeout: float = 300) -> None:
    """Wait until ``count`` runs of ``experiment`` have logged an epoch."""
    import mlflow

    os.environ.update({k: v for k, v in store.env.items() if k.startswith("MLFLOW_TRACKING")})
    client = mlflow.MlflowClient(store.uri)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = client.get_experiment_by_name(experiment)
        runs = client.search_runs([found.experiment_id]) if found else []
        if sum(1 for r in runs if "loss" in r.data.metrics) >= count:
            return
        time.sleep(1.0)
    raise SystemExit(f"{store.kind}: {count} runs of {experiment} never logged an epoch")


def measure(kind: str, slurm_env: dict | None, root: Path) -> dict:
    store = Store(kind, root)
    try:
        begun = time.monotonic()
        jobs = launch(store, root, slurm_env)
        restart_s = None
        if kind != "sqlite-file":
            opened_all(store, "processes", PROCESSES)  # the middle: every process is logging
            restart_s = store.restart()
        codes = {label: job.wait() for label, job in jobs}
        wall = time.monotonic() - begun
        logs = "".join(p.read_text(errors="replace") for p in root.glob("*/output.log"))
        logs += "".join(p.read_text(errors="replace") for p in root.rglob("*.err"))
        found = read_back(store, root, slurm_env is not None)
    finally:
        store.stop()  # a benchmark that fails leaves no server behind
    return {
        **found,
        "failed_commands": sum(1 for c in codes.values() if c != 0),
        "locked": logs.count("database is locked"),
        "wall_s": wall,
        "restart_s": restart_s,
    }


def row(kind: str, r: dict) -> str:
    restart = "none" if r["restart_s"] is None else f"{r['restart_s']:.0f} s"
    return (
        f"| {kind} | {r['finished']}/{r['expected']} | {r['lost']} | {r['duplicated']} | "
        f"{r['downloaded']}/{r['expected']} | {r['failed_commands']} | {r['locked']} | "
        f"{restart} | {r['wall_s']:.0f} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--stores", default=",".join(STORES))
    parser.add_argument("--write", action="store_true", help="into RESULTS.md")
    parser.add_argument("--keep", action="store_true", help="keep the jobs' folders and logs")
    args = parser.parse_args()
    lines = [
        machine(),
        "",
        "| store | runs FINISHED | metric values lost | duplicated | plots downloaded | "
        "commands failed | 'database is locked' lines | restart | wall s |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    print("\n".join(lines), flush=True)
    tmp = Path(tempfile.mkdtemp(prefix="lab-load-"))
    tmp.chmod(0o711)  # PostgreSQL runs as 'postgres' under root: it must reach here
    slurm_env = start_slurm(tmp)
    try:
        for kind in args.stores.split(","):
            (tmp / kind).mkdir()
            line = row(kind, measure(kind, slurm_env, tmp / kind))
            print(line, flush=True)
            lines.append(line)
    finally:
        if slurm_env:
            stop = [str(ROOT / "scripts" / "local_slurm.sh"), "stop"]
            subprocess.run(stop, env=slurm_env, capture_output=True)
        if args.keep:
            print(f"The jobs' folders and logs: {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    if not slurm_env:
        lines.append("\nNo SLURM here (needs root and slurm-wlm): the SLURM array was left out.")
    if args.write:
        text = "### Many writers and a restart: what each store keeps\n\n" + "\n".join(lines)
        write_part(cpu_kind(), "lab_server_load", "python benchmarks/lab_server_load.py", text)


if __name__ == "__main__":
    main()
