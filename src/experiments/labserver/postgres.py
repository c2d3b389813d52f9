"""A PostgreSQL cluster of the server's own, in ``<folder>/postgres``, on loopback only.

Debian's ``postgresql`` package (``/usr/lib/postgresql/<version>/bin``) or the ``initdb``
and ``pg_ctl`` on PATH; no container. PostgreSQL refuses to run as root, so when this
command runs as root the cluster's folder belongs to the ``postgres`` user and its
programs run as that user (``runuser``). Only the MLflow server connects, over
127.0.0.1, with a password of its own (``secrets.kept``), as the database user ``mlflow``.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from experiments.errors import ConfigError
from experiments.labserver import secrets

USER = "mlflow"  # the database role the MLflow server signs in as
DATABASES = ("mlflow", "mlflow_auth")  # runs and models; MLflow's users and permissions
ROOT_RUNS_AS = "postgres"


@dataclass
class Cluster:
    home: Path  # <folder>/postgres: the data, the socket and the log
    port: int

    @property
    def data(self) -> Path:
        return self.home / "data"

    @property
    def log(self) -> Path:
        return self.home / "postgres.log"

    def uri(self, database: str, password: str) -> str:
        return f"postgresql+psycopg://{USER}:{password}@127.0.0.1:{self.port}/{database}"


def binaries() -> Path:
    """The folder holding ``initdb`` and ``pg_ctl``."""
    found = shutil.which("pg_ctl")
    candidates = [Path(os.path.realpath(found)).parent] if found else []
    candidates += [Path(p) for p in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)]
    for folder in candidates:
        if (folder / "initdb").is_file() and (folder / "pg_ctl").is_file():
            return folder
    raise ConfigError(
        "PostgreSQL",
        "initdb and pg_ctl not found on PATH nor in /usr/lib/postgresql/*/bin: install "
        "PostgreSQL (Debian: apt-get install postgresql) or put its bin folder on PATH",
    )


def _as_owner(command: list[str]) -> list[str]:
    return ["runuser", "-u", ROOT_RUNS_AS, "--", *command] if os.geteuid() == 0 else command


def _run(command: list[str], what: str) -> subprocess.CompletedProcess:
    result = subprocess.run(_as_owner(command), capture_output=True, text=True, timeout=120)
    if result.returncode != 0:
        lines = (result.stderr or result.stdout).strip().splitlines() or ["no output"]
        raise ConfigError("PostgreSQL", f"{what} failed: {lines[-1]}")
    return result


def _prepare_home(cluster: Cluster) -> None:
    """``<folder>/postgres``, mode 700, owned by whoever runs PostgreSQL."""
    cluster.home.mkdir(mode=0o700, parents=True, exist_ok=True)
    if os.geteuid() != 0:
        return
    shutil.chown(cluster.home, ROOT_RUNS_AS, ROOT_RUNS_AS)
    reach = subprocess.run(_as_owner(["test", "-w", str(cluster.home)]), capture_output=True)
    if reach.returncode != 0:
        raise ConfigError(
            "folder",
            f"PostgreSQL refuses to run as root, so it runs as the '{ROOT_RUNS_AS}' user, who "
            f"cannot reach {cluster.home} (a parent folder is closed to other users): choose "
            "a folder it can reach (e.g. under /srv), or run this command as an ordinary user",
        )


def initialised(cluster: Cluster) -> bool:
    return (cluster.data / "PG_VERSION").is_file()


def init(cluster: Cluster, password: str) -> None:
    """A new cluster whose only role is ``mlflow``, with ``password``, over scram-sha-256."""
    _prepare_home(cluster)
    pwfile = cluster.home / "pwfile"
    secrets.write_private(pwfile, password)
    if os.geteuid() == 0:
        shutil.chown(pwfile, ROOT_RUNS_AS, ROOT_RUNS_AS)
    try:
        command = [str(binaries() / "initdb"), "-D", str(cluster.data), "-U", USER]
        command += ["--pwfile", str(pwfile), "--auth=scram-sha-256", "-E", "UTF8"]
        _run(command, "initdb")
    finally:
        pwfile.unlink(missing_ok=True)


def running(cluster: Cluster) -> bool:
    if not initialised(cluster):
        return False
    status = subprocess.run(
        _as_owner([str(binaries() / "pg_ctl"), "-D", str(cluster.data), "status"]),
        capture_output=True,
    )
    return status.returncode == 0


def start(cluster: Cluster) -> None:
    """Start the cluster on 127.0.0.1:``port``, its socket in its own folder; wait for it."""
    options = f"-c listen_addresses=127.0.0.1 -p {cluster.port} -k {cluster.home}"
    command = [str(binaries() / "pg_ctl"), "-D", str(cluster.data), "-l", str(cluster.log)]
    _run([*command, "-o", options, "-w", "-t", "60", "start"], "starting PostgreSQL")


def stop(cluster: Cluster) -> None:
    if running(cluster):
        command = [str(binaries() / "pg_ctl"), "-D", str(cluster.data), "-m", "fast"]
        _run([*command, "-w", "-t", "60", "stop"], "stopping PostgreSQL")


def create_databases(cluster: Cluster, password: str) -> None:
    """The databases MLflow needs, each created once."""
    import psycopg

    with psycopg.connect(
        host="127.0.0.1",
        port=cluster.port,
        user=USER,
        password=password,
        dbname="postgres",
        autocommit=True,
        connect_timeout=30,
    ) as connection:
        existing = {row[0] for row in connection.execute("SELECT datname FROM pg_database")}
        for name in DATABASES:
            if name not in existing:
                connection.execute(f'CREATE DATABASE "{name}"')
