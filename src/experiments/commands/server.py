"""``python -m experiments.server start|stop|status folder=<folder>``: a lab's tracking server.

``start`` initialises a PostgreSQL cluster in ``<folder>/postgres`` (once), starts it on
127.0.0.1, then ``mlflow server`` on it with sign-in and proxied artifacts
(``<folder>/artifacts``). ``stop`` ends exactly the processes ``start`` started;
``status`` says what runs. The state is ``<folder>/server.json``; the secrets are in
``<folder>/secrets/`` (mode 600). Back up ``pg_dump`` of both databases and the artifacts.
"""

from __future__ import annotations

import ipaddress
import json
import socket
from dataclasses import dataclass
from pathlib import Path

from omegaconf import OmegaConf

from experiments.commands.cli_args import parse, run_command
from experiments.errors import ConfigError
from experiments.labserver import mlflow_server, postgres, process, secrets

USAGE = """\
usage: python -m experiments.server start|stop|status folder=<folder> [key=value ...]

A tracking server for a lab: MLflow on PostgreSQL, with sign-in, artifacts through the
server. The admin's first password comes from $MLFLOW_AUTH_ADMIN_PASSWORD or
password_file=<a file only you can read>, never from the command line.

keys (default):
  folder (required)     the server's folder: postgres/, artifacts/, secrets/, logs
  host=127.0.0.1        the address to listen on; 0.0.0.0 (or the node's address) lets
                        compute nodes in
  port=5000             the MLflow server's port (PostgreSQL takes a free loopback port)
  workers=2             the server's worker processes
  auth=true             sign-in (mlflow server --app-name basic-auth)
  password_file=null    the admin's password, in a file of mode 600
  allow_open_network_without_sign_in=false
                        with auth=false and a host other than loopback: anyone who can
                        reach the port can read, change and delete every run

examples:
  python -m experiments.server start folder=/srv/mlflow-lab host=0.0.0.0
  python -m experiments.server status folder=/srv/mlflow-lab

Clients: MLFLOW_TRACKING_URI=http://<host>:<port>, with MLFLOW_TRACKING_USERNAME and
MLFLOW_TRACKING_PASSWORD (or ~/.mlflow/credentials).
exit status: 0 done, 1 status found the server stopped, 2 bad input"""


@dataclass
class ServerArgs:
    folder: str
    host: str = "127.0.0.1"
    port: int = 5000
    workers: int = 2
    auth: bool = True
    password_file: str | None = None
    allow_open_network_without_sign_in: bool = False


def _state_path(folder: Path) -> Path:
    return folder / "server.json"


def _read_state(folder: Path) -> dict:
    path = _state_path(folder)
    return json.loads(path.read_text()) if path.is_file() else {}


def _write_state(folder: Path, state: dict) -> None:
    _state_path(folder).write_text(json.dumps(state, indent=2) + "\n")


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _check(cfg) -> Path:
    if OmegaConf.is_missing(cfg, "folder") or not cfg.folder:
        raise ConfigError("folder", "is required: folder=<the server's folder>")
    if cfg.workers < 1:
        raise ConfigError("workers", f"must be >= 1, got {cfg.workers}")
    if not cfg.auth and not _loopback(cfg.host) and not cfg.allow_open_network_without_sign_in:
        raise ConfigError(
            "auth=false",
            f"with host={cfg.host} anyone who can reach port {cfg.port} can read, change and "
            "delete every run: keep auth=true, bind host=127.0.0.1, or accept the risk with "
            "allow_open_network_without_sign_in=true",
        )
    return Path(cfg.folder).expanduser().resolve()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _port_taken(host: str, port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("" if host in ("0.0.0.0", "::") else host, port))
        except OSError:
            return True
    return False


def start(cfg) -> int:
    folder = _check(cfg)
    state = _read_state(folder)
    running = process.Started(**state["mlflow"]) if state.get("mlflow") else None
    if running and running.alive():
        print(f"Already running: {state['url']} (process {running.pid}); stop it first")
        return 0
    password = secrets.admin_password(cfg.password_file) if cfg.auth else None
    if _port_taken(cfg.host, cfg.port):
        raise ConfigError("port", f"{cfg.host}:{cfg.port} is in use: pass port=<a free port>")
    folder.mkdir(parents=True, exist_ok=True)
    cluster = postgres.Cluster(folder / "postgres", state.get("postgres_port") or _free_port())
    db_password = secrets.kept(folder, "database_password")
    if not postgres.initialised(cluster):
        postgres.init(cluster, db_password)
    if not postgres.running(cluster):
        postgres.start(cluster)
    postgres.create_databases(cluster, db_password)
    env = {
        "MLFLOW_BACKEND_STORE_URI": cluster.uri("mlflow", db_password),
        "MLFLOW_FLASK_SERVER_SECRET_KEY": secrets.kept(folder, "session_key"),
    }
    if cfg.auth:
        ini = mlflow_server.auth_config(folder, cluster.uri("mlflow_auth", db_password))
        env.update(MLFLOW_AUTH_CONFIG_PATH=str(ini), MLFLOW_AUTH_ADMIN_PASSWORD=password)
    started = mlflow_server.start(folder, cfg.host, cfg.port, cfg.workers, env, cfg.auth)
    url = f"http://{cfg.host}:{cfg.port}"
    _write_state(
        folder,
        {
            "url": url,
            "host": cfg.host,
            "port": cfg.port,
            "auth": cfg.auth,
            "postgres_port": cluster.port,
            "mlflow": started.to_json(),
        },
    )
    _say_started(url, cfg, cluster, folder)
    return 0


def _say_started(url: str, cfg, cluster, folder: Path) -> None:
    print(
        f"MLflow server on {url} (process group of its own), PostgreSQL on "
        f"127.0.0.1:{cluster.port}, artifacts in {folder / 'artifacts'}"
    )
    if _loopback(cfg.host):
        print(
            "Listening on this machine only: pass host=0.0.0.0 (or this node's address) "
            "to let compute nodes in"
        )
    print(f"Clients: export MLFLOW_TRACKING_URI={url}")
    if cfg.auth:
        print(
            f"         and sign in: MLFLOW_TRACKING_USERNAME={mlflow_server.ADMIN} "
            "MLFLOW_TRACKING_PASSWORD=... (or ~/.mlflow/credentials); add users in the UI"
        )
    print(f"Stop: python -m experiments.server stop folder={folder}")


def stop(cfg) -> int:
    folder = _check(cfg)
    state = _read_state(folder)
    if state.get("mlflow"):
        process.Started(**state["mlflow"]).stop()
        print(f"Stopped the MLflow server (process {state['mlflow']['pid']})")
    if state.get("postgres_port"):
        postgres.stop(postgres.Cluster(folder / "postgres", state["postgres_port"]))
        print("Stopped PostgreSQL")
    if state:
        state.pop("mlflow", None)
        _write_state(folder, state)
    else:
        print(f"No server was started in {folder}")
    return 0


def status(cfg) -> int:
    folder = _check(cfg)
    state = _read_state(folder)
    if not state:
        print(f"No server was started in {folder}")
        return 1
    server = process.Started(**state["mlflow"]) if state.get("mlflow") else None
    cluster = postgres.Cluster(folder / "postgres", state["postgres_port"])
    up = server is not None and server.alive()
    answering = up and mlflow_server.answers(f"http://127.0.0.1:{state['port']}")
    print(
        f"MLflow server {state['url']}: "
        f"{'running' if up else 'stopped'}{', answering' if answering else ''}"
        f"{f' (process {server.pid})' if up else ''}"
    )
    print(
        f"PostgreSQL 127.0.0.1:{cluster.port}: "
        f"{'running' if postgres.running(cluster) else 'stopped'}"
    )
    return 0 if up else 1


ACTIONS = {"start": start, "stop": stop, "status": status}


def _server(argv: list[str]) -> int:
    if not argv or {"-h", "--help"} & set(argv):
        print(USAGE)
        return 0 if argv else 2
    action, rest = argv[0], argv[1:]
    if action not in ACTIONS:
        raise ConfigError("action", f"unknown '{action}': one of {', '.join(ACTIONS)}")
    cfg = parse(rest, ServerArgs, "experiments.server")
    return ACTIONS[action](cfg)


def main(argv: list[str] | None = None) -> None:
    run_command(_server, argv)


if __name__ == "__main__":
    main()
