"""SIGTERM (a killed job, ``scancel``, a requeue) stops the process as Ctrl-C does."""

from __future__ import annotations

import contextlib
import signal
import threading

_stops: list[str] = []  # why this process was asked to stop, once it was


def requested(reason: str) -> KeyboardInterrupt:
    """Note that the process was asked to stop (a signal); the KeyboardInterrupt to raise."""
    _stops.append(reason)
    return KeyboardInterrupt(reason)


def _interrupt(signum, frame):
    raise requested(f"signal {signum}")


def interrupt_on_sigterm() -> tuple[bool, object]:
    """Make SIGTERM raise KeyboardInterrupt; return (installed, the handler it replaced).

    Only the main thread may set a handler: elsewhere (a job run in a thread) nothing changes.
    """
    if threading.current_thread() is not threading.main_thread():
        return False, None
    return True, signal.signal(signal.SIGTERM, _interrupt)


def interruption(exc: BaseException) -> KeyboardInterrupt | None:
    """The KeyboardInterrupt that ``exc`` is or wraps, or the stop asked of the process
    before ``exc``; None when neither.

    A signal that arrives while C code runs raises its KeyboardInterrupt there, and the C
    code may report something else: a SystemError whose context is the interruption
    (TensorFlow importing a module lazily), or a TypeError that lost it (Keras converting
    a batch: "Failed to convert elements of (None,) to Tensor"). The run was stopped all
    the same.
    """
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, KeyboardInterrupt):
            return exc
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return KeyboardInterrupt(_stops[-1]) if _stops else None


@contextlib.contextmanager
def sigterm_interrupts():
    """SIGTERM raises KeyboardInterrupt inside the block, so a killed run ends KILLED."""
    installed, previous = interrupt_on_sigterm()
    _stops.clear()  # a stop asked of an earlier run of this process is not this run's
    try:
        yield
    finally:
        if installed:
            signal.signal(signal.SIGTERM, previous)
