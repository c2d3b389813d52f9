"""A default run logging to the lab server against the same run on the local SQLite store.

    python benchmarks/lab_server_overhead.py            # 2 rounds, ~9 min on 2 cores
    python benchmarks/lab_server_overhead.py --write    # and into RESULTS.md, this CPU's section

The whole command, ``python -m experiments`` with its defaults (the compact CNN on all of
Fashion-MNIST), as a user waits for it: once with the embedded store in its folder, once
signed in to the lab server (``python -m experiments.server``: PostgreSQL, sign-in,
artifacts through the server) on this machine, alternating (A B A B).
"""

from __future__ import annotations

import argparse
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from common import cpu_kind, environment, machine  # noqa: E402
from lab_server_load import free_port  # noqa: E402
from results import write_part  # noqa: E402


def timed(cwd: Path, env: dict, *overrides: str) -> float:
    begun = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "experiments", "trainer.verbose=0", *overrides],
        cwd=cwd,
        env=env,
        check=True,
        capture_output=True,
    )
    return time.perf_counter() - begun


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--write", action="store_true", help="into RESULTS.md")
    args = parser.parse_args()
    password = secrets.token_urlsafe(16)
    signed_in = {
        **environment(),
        "MLFLOW_TRACKING_USERNAME": "admin",
        "MLFLOW_TRACKING_PASSWORD": password,
    }
    times: dict[str, list[float]] = {"local SQLite store": [], "lab server": []}
    with tempfile.TemporaryDirectory(prefix="lab-overhead-") as tmp:
        root = Path(tmp)
        root.chmod(0o711)  # PostgreSQL runs as 'postgres' under root: it must reach here
        port, folder = free_port(), root / "server"
        start = ["start", f"folder={folder}", f"port={port}"]
        server = [sys.executable, "-m", "experiments.server"]
        env = {**environment(), "MLFLOW_AUTH_ADMIN_PASSWORD": password}
        subprocess.run([*server, *start], env=env, check=True, capture_output=True)
        try:
            for n in range(args.rounds):
                local, remote = root / f"local-{n}", root / f"remote-{n}"
                local.mkdir(), remote.mkdir()
                times["local SQLite store"].append(timed(local, environment()))
                url = f"mlflow.tracking_uri=http://127.0.0.1:{port}"
                times["lab server"].append(timed(remote, signed_in, url))
                print({k: [round(v, 1) for v in t] for k, t in times.items()}, flush=True)
        finally:
            subprocess.run([*server, "stop", f"folder={folder}"], capture_output=True)
    base = statistics.mean(times["local SQLite store"])
    lines = [machine(), "", "| store | whole command, s (each round) | mean | against local |"]
    lines.append("|---|---|---:|---:|")
    for store, values in times.items():
        mean = statistics.mean(values)
        each = ", ".join(f"{v:.1f}" for v in values)
        lines.append(f"| {store} | {each} | {mean:.1f} | {100 * (mean / base - 1):+.1f} % |")
    print("\n".join(lines))
    if args.write:
        text = "### A default run through the lab server\n\n" + "\n".join(lines)
        write_part(
            cpu_kind(), "lab_server_overhead", "python benchmarks/lab_server_overhead.py", text
        )


if __name__ == "__main__":
    main()
