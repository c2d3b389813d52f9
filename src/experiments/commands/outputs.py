"""Folders a run writes to, checked before anything heavy starts.

A run writes Hydra's log folder, its checkpoints and, with the embedded store, the
database and the artifacts. Finding one of them read-only after an hour of training
would lose the hour, so each is tried at start: created if needed, and a file written
and removed in it.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from experiments.errors import ConfigError


def ensure_writable(folder: str | os.PathLike, key: str, remedy: str) -> Path:
    """Create ``folder`` if needed and check a file can be written there.

    Raises ConfigError naming ``key`` (the setting that chose the folder) and ``remedy``.
    """
    path = Path(folder).absolute()
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path, prefix=".write-check-"):
            pass
    except OSError as exc:
        raise ConfigError(
            key, f"cannot write to {path} ({exc.strerror or exc}); {remedy}"
        ) from None
    return path


class OutputFolderCheck(Callback):
    """Fails with one line, before the job starts, when Hydra's output folder is not writable.

    Hydra itself would stop with a traceback from inside its job runner.
    """

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        _check_or_exit(config.hydra.run.dir, "hydra.run.dir")

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        _check_or_exit(config.hydra.sweep.dir, "hydra.sweep.dir")


def _check_or_exit(folder: str, key: str) -> None:
    import logging
    import sys

    try:
        ensure_writable(folder, key, f"run from a writable folder or set {key}=<folder>")
    except ConfigError as exc:
        logging.getLogger("experiments").error("%s", exc)
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
