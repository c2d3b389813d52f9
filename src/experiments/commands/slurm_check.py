"""A Hydra callback that refuses a SLURM request no node can meet, before the sweep starts.

It runs before the sweep's MLflow parent run opens (``conf/config.yaml`` lists it first),
so a refused request leaves nothing behind: one ``error:`` line, exit status 2
(``experiments.training.slurm_request`` says what is checked).
"""

from __future__ import annotations

from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from experiments.commands.cli_args import exit_on_error
from experiments.errors import ConfigError
from experiments.training import slurm_request

LAUNCHER = "hydra_plugins.experiments_slurm.slurm_launcher.SlurmLauncher"


class SlurmRequestCheck(Callback):
    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        launcher = config.hydra.get("launcher")
        if launcher is None or launcher.get("_target_") != LAUNCHER:
            return
        try:
            slurm_request.check(launcher, slurm_request.partitions())
        except ConfigError as exc:
            exit_on_error(exc, to_log=True)
