"""SIGTERM (a killed job, ``scancel``, a requeue) stops the process as Ctrl-C does."""

from __future__ import annotations

import contextlib
import signal
import threading


def _interrupt(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


def interrupt_on_sigterm() -> tuple[bool, object]:
    """Make SIGTERM raise KeyboardInterrupt; return (installed, the handler it replaced).

    Only the main thread may set a handler: elsewhere (a job run in a thread) nothing changes.
    """
    if threading.current_thread() is not threading.main_thread():
        return False, None
    return True, signal.signal(signal.SIGTERM, _interrupt)


def interruption(exc: BaseException) -> KeyboardInterrupt | None:
    """The KeyboardInterrupt that ``exc`` is, or that it wraps; None when it is not one.

    A signal that arrives while C code runs (TensorFlow importing a module lazily, say)
    raises its KeyboardInterrupt there, and the C code reports it as a SystemError whose
    context is the interruption: the run was stopped all the same.
    """
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, KeyboardInterrupt):
            return exc
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return None


@contextlib.contextmanager
def sigterm_interrupts():
    """SIGTERM raises KeyboardInterrupt inside the block, so a killed run ends KILLED."""
    installed, previous = interrupt_on_sigterm()
    try:
        yield
    finally:
        if installed:
            signal.signal(signal.SIGTERM, previous)
