"""A progress bar on a terminal, and nothing in a log file (whose lines say the start and end)."""

from __future__ import annotations

import sys


def bar(total: int, what: str, unit: str = "img"):
    """A tqdm bar of ``total`` items, shown only when stderr is a terminal."""
    from tqdm import tqdm

    return tqdm(total=total, desc=what, unit=unit, disable=not sys.stderr.isatty())
