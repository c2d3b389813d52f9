"""Progress on a terminal, and readable lines in a file or a pipe.

Two kinds: the project's own tqdm bars (image caches, frozen features), shown only when
stderr is a terminal, and Keras' bar during ``fit``. Keras draws its bar with ``\\r``,
backspaces and ANSI colours whenever ``"posix" in sys.modules``, which is always true on
Linux, so a log file got terminal codes; and with ``steps_per_execution`` > 1 it counts
the last, partial call as a whole one (422 batches in calls of 16: ``432/422``).
"""

from __future__ import annotations

import sys


def bar(total: int, what: str, unit: str = "img"):
    """A tqdm bar of ``total`` items, shown only when stderr is a terminal."""
    from tqdm import tqdm

    return tqdm(total=total, desc=what, unit=unit, disable=not sys.stderr.isatty())


def keras_logger():
    """A ``keras.callbacks.ProgbarLogger`` that stops at its total and, when stdout is not a
    terminal, writes one plain line per epoch (Keras' ``verbose=2`` line) instead of a bar."""
    from keras.callbacks import ProgbarLogger

    class Logger(ProgbarLogger):
        def set_params(self, params):
            super().set_params(params)
            if self.verbose == 1 and not _terminal():
                self.verbose = 2

        def _maybe_init_progbar(self):
            super()._maybe_init_progbar()
            self.progbar._dynamic_display = _terminal()

        def _update_progbar(self, batch, logs=None):
            if self.target is not None:  # Keras' step of the last call may run past the end
                batch = min(batch, self.target - 1)
            super()._update_progbar(batch, logs)

    return Logger()


def _terminal() -> bool:
    return hasattr(sys.stdout, "isatty") and sys.stdout.isatty()
