"""A command's process ends as soon as its work is done, not 1 to 2 seconds later.

Once every thread has been joined and every exit handler has run (MLflow's last metrics
sent, the log files flushed), Python still tears down its modules one by one, and
TensorFlow's libraries destroy their objects: 1.1 s after ``import tensorflow`` alone,
2.0 s after a small training run, on the 2-core AMD EPYC. Nothing of the command's is left
to do then, so the process ends there, with its exit status unchanged.

Only for the command-line entry points (``python -m experiments...``): a script that
calls a command's ``main()`` keeps its own interpreter. Not after Ctrl-C (Python ends by
its own SIGINT then, which shells read), nor while coverage measures the process (its
data is saved by an exit handler that runs after this one).
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import sys


def run(main) -> None:
    """Call ``main()``; at exit, skip the interpreter's teardown."""
    ended: dict[str, int | None] = {"code": 1}

    def end_now() -> None:  # registered first, so it runs after every other exit handler
        code = ended["code"]
        if code is None or _coverage_running():
            return
        logging.shutdown()
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        os._exit(code)

    atexit.register(end_now)
    try:
        main()
        ended["code"] = 0
    except SystemExit as exit_:
        ended["code"] = _status(exit_.code)
        raise
    except KeyboardInterrupt:
        ended["code"] = None
        raise


def _status(code) -> int:
    """The exit status Python gives ``SystemExit(code)``."""
    if code is None:
        return 0
    return code if isinstance(code, int) else 1


def _coverage_running() -> bool:
    coverage = sys.modules.get("coverage")
    return coverage is not None and coverage.Coverage.current() is not None
