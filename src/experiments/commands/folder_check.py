"""A Hydra callback that refuses an output folder it cannot write, before the job starts."""

from __future__ import annotations

from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from experiments.commands.cli_args import exit_on_error
from experiments.errors import ConfigError
from experiments.folders import ensure_writable


class OutputFolderCheck(Callback):
    """Fails with one line when Hydra's output folder is not writable.

    Hydra itself would stop with a traceback from inside its job runner.
    """

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        _check_or_exit(config.hydra.run.dir, "hydra.run.dir")

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        _check_or_exit(config.hydra.sweep.dir, "hydra.sweep.dir")


def _check_or_exit(folder: str, key: str) -> None:
    try:
        ensure_writable(folder, key, f"run from a writable folder or set {key}=<folder>")
    except ConfigError as exc:
        exit_on_error(exc, to_log=True)
