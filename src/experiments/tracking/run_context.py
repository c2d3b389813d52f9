"""The life of one MLflow run, in one place: start or resume, end FINISHED, FAILED or KILLED.

``run_context`` opens the run with its tags and an ``Outbox`` for everything it logs,
turns SIGTERM into an interruption, and on the way out:

- an exception ends the run FAILED, an interruption (Ctrl-C, SIGTERM) KILLED, with the
  reason as the tag ``failure_reason`` and the latest checkpoints logged;
- a tracking server that went away during the run does not lose it: what could not be
  sent is in ``unsent/<run_id>/``, the command says exactly what, and exits non-zero.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from experiments.errors import TrackingError, first_line
from experiments.signals import interruption, sigterm_interrupts
from experiments.tracking import outbox
from experiments.uris import redact

log = logging.getLogger(__name__)


@dataclass
class OpenRun:
    """The run being recorded: its identity, and the outbox every call to the store goes through."""

    id: str
    name: str
    artifact_uri: str
    outbox: outbox.Outbox


@contextlib.contextmanager
def run_context(
    uri: str,
    tags: dict[str, str],
    *,
    experiment_id: str | None = None,
    run_name: str | None = None,
    resume_id: str | None = None,
    checkpoints: Callable[[str], Path] | None = None,
    outage_wait_s: float = 0.0,
) -> Iterator[OpenRun]:
    """A new run of ``experiment_id`` named ``run_name``, or run ``resume_id`` continued.

    ``checkpoints(run_id)``: the run's checkpoint folder, logged when the run fails.
    ``outage_wait_s``: at the end, how long to wait for a server that went away.
    """
    if resume_id:  # the same run; its tags say where and how it was resumed
        started = _start(outage_wait_s, run_id=resume_id, tags=tags)
        _clear_failure(started)
    else:
        started = _start(outage_wait_s, experiment_id=experiment_id, run_name=run_name, tags=tags)
    info = started.info
    shown_uri = redact(uri)
    run = OpenRun(
        info.run_id,
        info.run_name,
        info.artifact_uri,
        outbox.Outbox(_unsent(info.run_id), shown_uri, outage_wait_s),
    )
    failure: BaseException | None = None
    try:
        with started, sigterm_interrupts():
            log.info("MLflow run %s (%s) in %s", run.name, run.id, shown_uri)
            try:
                yield run
            except BaseException as exc:
                failure = interruption(exc) or exc
                _end_unfinished(failure, run, checkpoints(run.id) if checkpoints else None)
                if failure is exc:
                    raise
                raise failure from None  # stopped by a signal, whatever C code made of it
            run.outbox.settle()
            run.outbox.wait_for_server()  # a server back by now gets what was kept
    except Exception as exc:
        _unless_only_the_end_went_unrecorded(exc, failure, run.outbox)
    if run.outbox.offline:
        _report_unsent(run.outbox, "FINISHED")


def _start(wait_s: float, **arguments):
    """``mlflow.start_run(**arguments)``, asked again for up to ``wait_s`` seconds while the
    server does not answer (a restart between the store's check and the run's start)."""
    import mlflow

    deadline = time.monotonic() + wait_s
    while True:
        try:
            return mlflow.start_run(**arguments)
        except Exception as exc:
            if not outbox.is_unreachable(exc) or time.monotonic() >= deadline:
                raise
            log.warning("The tracking server does not answer (%s); trying again", first_line(exc))
            time.sleep(2.0)


def _unsent(run_id: str) -> Path:
    return Path.cwd() / "unsent" / run_id


def _unless_only_the_end_went_unrecorded(
    exc: Exception, failure: BaseException | None, sender: outbox.Outbox
) -> None:
    """Re-raise, except when all that failed is telling a server that is gone the run's end."""
    if failure is not None and exc is not failure:
        raise failure from None  # not the server's failure to record its end
    if failure is not None or not (sender.offline and outbox.is_unreachable(exc)):
        raise exc
    log.debug("the run's end could not be recorded: %s", exc)


def _clear_failure(started) -> None:
    """A resumed run's tags describe its final state: why it stopped before is kept as
    ``resumed.previous_failure_reason``, not as its ``failure_reason``."""
    import mlflow

    reason = started.data.tags.get("failure_reason")
    if reason is not None:
        mlflow.set_tag("resumed.previous_failure_reason", reason)
        mlflow.delete_tag("failure_reason")


def _end_unfinished(exc: BaseException, run: OpenRun, checkpoints: Path | None) -> None:
    """Record why the run stopped; an interruption ends it KILLED rather than FAILED."""
    import mlflow

    reason = f"{type(exc).__name__}: {exc}"[:500]
    sender = run.outbox
    try:
        sender.settle()
        sender.send(
            "tags",
            lambda: mlflow.set_tag("failure_reason", reason),
            outbox.keep_json("tags.json", {"failure_reason": reason}),
        )
        mlflow.flush_async_logging()
    except Exception:  # the store itself may be what failed
        log.warning("could not record the failure reason in MLflow: %s", reason)
    if checkpoints is not None and checkpoints.is_dir():
        _log_checkpoints(sender, checkpoints)
    status = "KILLED" if isinstance(exc, KeyboardInterrupt) else "FAILED"
    if sender.offline and not sender.reconnect(now=True):  # an interruption does not wait
        _report_unsent(sender, status)
    if status == "KILLED":
        log.warning("Interrupted: the run ends KILLED; what was logged so far stays")
        with contextlib.suppress(Exception):  # a server that went away cannot be told
            mlflow.end_run("KILLED")


def _log_checkpoints(sender: outbox.Outbox, folder: Path) -> None:
    import mlflow

    log.warning("The latest checkpoints of this run are in %s", folder)
    try:
        sender.send(
            "checkpoints",
            lambda: mlflow.log_artifacts(str(folder), "checkpoints"),
            lambda unsent: None,
        )
    except Exception:
        log.warning("could not log the checkpoints to MLflow; they stay in %s", folder)


def _report_unsent(sender: outbox.Outbox, status: str) -> None:
    """Say exactly what did not reach the tracking server and where it is; exit non-zero."""
    sender.kept.append(f"the run's end ({status})")
    outbox.keep_json("status.json", {"status": status, "reason": sender.reason})(sender.folder)
    log.error("The tracking server went away during the run (%s)", sender.reason)
    log.error("%s", sender.summary())
    if status == "FINISHED":
        raise TrackingError(
            f"training finished, but the tracking server stopped answering; {sender.summary()}"
        )
