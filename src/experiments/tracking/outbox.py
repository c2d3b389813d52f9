"""What a run could not send to its tracking server, kept on disk instead.

A tracking server may go away in the middle of a run (a restart, a network cut). The
training must not die with it: every call that logs goes through ``Outbox.send``. While
the server answers, the call goes through. After the first call that fails because the
server does not answer, nothing more is sent; each later item is written under
``unsent/<run_id>/`` (metrics as JSON lines, params and tags as JSON, artifacts as files,
the model as ``model.keras``). Every ``RETRY_EVERY_S`` seconds, and once more at the run's
end, the run asks again: a server (or its database) that is back gets what was kept, in
order, and logging goes on as before. Otherwise the end of the run lists exactly what is
there.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import time
from collections.abc import Callable
from pathlib import Path

from experiments.tracking import health, replay

log = logging.getLogger(__name__)

# MLflow's client retries a dead server for minutes per call; a run wants to know in seconds.
HTTP_DEFAULTS = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "30",
}
RETRY_EVERY_S = 5.0  # how often a run asks a server that went away whether it is back
PROBE_TIMEOUT_S = 2.0  # that question: one health check, answered in milliseconds when it is
_UNREACHABLE = re.compile(
    r"max retries exceeded|connection refused|connectionerror|failed to establish|"
    r"timed out|remotedisconnected|connection aborted|connection reset|connection broken|"
    r"incompleteread|chunkedencodingerror|protocolerror",
    re.IGNORECASE,
)


def use_short_retries(uri: str) -> None:
    """For a tracking server: MLflow's retry settings that fail in seconds, unless set."""
    if uri.startswith(("http://", "https://")):
        for key, value in HTTP_DEFAULTS.items():
            os.environ.setdefault(key, value)


def is_unreachable(exc: BaseException) -> bool:
    """Whether ``exc`` says the tracking server did not answer (not that it refused)."""
    if isinstance(exc, (ConnectionError, TimeoutError)):
        return True
    try:
        import requests

        if isinstance(exc, (requests.ConnectionError, requests.Timeout)):
            return True
    except ImportError:  # pragma: no cover - requests comes with MLflow
        pass
    return bool(_UNREACHABLE.search(f"{type(exc).__name__}: {exc}"))


class Outbox:
    """Sends while the server answers; keeps everything on disk once it stops answering."""

    def __init__(self, folder: Path, uri: str, wait_s: float = 0.0):
        self.folder = folder
        self.uri = uri
        self.wait_s = wait_s  # at the run's end: how long to wait for a server that went away
        self.reason: str | None = None  # why the server was given up on
        self.kept: list[str] = []  # what was written to ``folder`` instead of sent
        self._pending: list[tuple[dict[str, float], int, object]] = []
        self._asked = 0.0  # when the server was last asked whether it is back (monotonic)
        self._again: list[Callable[[], object]] = []  # sent from memory once it is back

    @property
    def remote(self) -> bool:
        """Whether the store is a server: there a synchronous call waits for its answer.

        A local store gets each epoch's metrics synchronously: MLflow's asynchronous queue
        keeps its thread waiting up to a second for more, and the run's end waits for it.
        """
        return self.uri.startswith(("http://", "https://", "databricks"))

    @property
    def offline(self) -> bool:
        return self.reason is not None

    def send(
        self,
        what: str,
        call: Callable[[], object],
        keep: Callable[[Path], None],
        again: bool = False,
    ):
        """``call()`` while the server answers; else ``keep(folder)`` and remember ``what``.

        ``again``: once the server is back, ``call()`` sends it from memory (the model: the
        file kept cannot become an MLflow model with its signature by itself).
        """
        self.reconnect()
        if not self.offline:
            try:
                return call()
            except Exception as exc:
                if not is_unreachable(exc):
                    raise
                self._give_up(exc)
        self.folder.mkdir(parents=True, exist_ok=True)
        keep(self.folder)
        self.kept.append(what)
        if again:
            self._again.append(call)
        return None

    def metrics(self, metrics: dict[str, float], step: int | None = None) -> None:
        """Log ``metrics``: to a server asynchronously, ``settle`` later finds out whether they
        arrived; to a local store at once."""
        import mlflow

        self.reconnect()
        if self.offline:
            self._journal(metrics, step)
            return
        if not self.remote:  # a database written here: a call takes milliseconds
            mlflow.log_metrics(metrics, step=step, synchronous=True)
            return
        operations = mlflow.log_metrics(metrics, step=step, synchronous=False)
        self._pending.append((metrics, step, operations))

    def settle(self) -> None:
        """Wait for the metrics sent asynchronously; keep on disk those that did not arrive."""
        pending, self._pending = self._pending, []
        for metrics, step, operations in pending:
            try:
                operations.wait()
            except Exception as exc:
                if not is_unreachable(exc):
                    raise
                if not self.offline:
                    self._give_up(exc)
                self._journal(metrics, step)

    def reconnect(self, now: bool = False) -> bool:
        """Once the server answers again, send it what was kept and go back online.

        Asked at most every ``RETRY_EVERY_S`` seconds (``now``: at once), by one health check
        (``health``): MLflow's client, retrying with back-off, took 3 to 4 s to say a stopped
        server was still gone, and stalled training that long at each question. Each part
        kept is removed once sent, so a server that fails again half-way gets no part twice.
        """
        if not self.offline or (not now and time.monotonic() - self._asked < RETRY_EVERY_S):
            return not self.offline
        self._asked = time.monotonic()
        if self.uri.startswith(("http://", "https://")):
            if health.unanswered(self.uri, PROBE_TIMEOUT_S) is not None:
                return False
        try:
            replay.send_kept(self.folder)
            while self._again:
                self._again[0]()
                self._again.pop(0)
        except Exception as exc:
            if not is_unreachable(exc):
                log.warning("Could not send what this run kept in %s: %s", self.folder, exc)
            return False
        log.warning(
            "The tracking server %s answers again: what this run kept while it was away is "
            "sent, and logging goes on",
            self.uri,
        )
        shutil.rmtree(self.folder, ignore_errors=True)
        self.reason, self.kept = None, []
        return True

    def wait_for_server(self) -> bool:
        """At the run's end: ask the server again for up to ``wait_s`` seconds (a restart)."""
        deadline = time.monotonic() + self.wait_s
        while not self.reconnect(now=True) and time.monotonic() < deadline:
            time.sleep(min(RETRY_EVERY_S, max(0.0, deadline - time.monotonic())))
        return not self.offline

    def summary(self) -> str:
        """One line naming what was kept and where, for the log and the error."""
        counts: dict[str, int] = {}
        for what in self.kept:
            counts[what] = counts.get(what, 0) + 1
        listed = ", ".join(f"{what} x{n}" if n > 1 else what for what, n in counts.items())
        return f"not sent to {self.uri}, kept in {self.folder}: {listed}"

    def _journal(self, metrics: dict[str, float], step: int | None) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        with open(self.folder / "metrics.jsonl", "a") as handle:
            entry = {"step": step, "time_ms": int(time.time() * 1000), "metrics": metrics}
            handle.write(json.dumps(entry) + "\n")
        self.kept.append("epoch metrics" if step is not None else "metrics")

    def _give_up(self, exc: BaseException) -> None:
        self.reason = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else repr(exc)
        log.warning(
            "The tracking server %s stopped answering (%s). Training goes on; what this run "
            "logs from now on is written to %s, and sent if the server answers again",
            self.uri,
            self.reason,
            self.folder,
        )


def keep_json(name: str, values: dict) -> Callable[[Path], None]:
    """A ``keep`` that merges ``values`` into ``<folder>/<name>``."""

    def keep(folder: Path) -> None:
        path = folder / name
        merged = json.loads(path.read_text()) if path.is_file() else {}
        merged.update({k: str(v) for k, v in values.items()})
        path.write_text(json.dumps(merged, indent=1))

    return keep


def keep_file(artifact_path: str, write: Callable[[Path], None]) -> Callable[[Path], None]:
    """A ``keep`` that writes an artifact to ``<folder>/artifacts/<artifact_path>``."""

    def keep(folder: Path) -> None:
        path = folder / "artifacts" / artifact_path
        path.parent.mkdir(parents=True, exist_ok=True)
        write(path)

    return keep


def keep_tree(source: Path, artifact_path: str) -> Callable[[Path], None]:
    """A ``keep`` that copies the folder ``source`` under ``<folder>/artifacts/``."""

    def keep(folder: Path) -> None:
        shutil.copytree(source, folder / "artifacts" / artifact_path, dirs_exist_ok=True)

    return keep
