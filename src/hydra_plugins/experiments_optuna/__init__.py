"""``hparams_search=optuna``: this project's Optuna sweeper (``experiments.search``).

It lives here because Hydra instantiates sweepers only from the ``hydra_plugins`` package,
and it is thin: the settings are kept as given, the launcher made as Hydra makes it, and
``experiments.search.loop`` runs the study. Hydra imports this module at every start to
look for plugins, so nothing heavy is imported here; Optuna only when a search starts.
"""

from __future__ import annotations

from typing import Any

from hydra.core.plugins import Plugins
from hydra.plugins.sweeper import Sweeper as HydraSweeper
from omegaconf import DictConfig, ListConfig, OmegaConf


class Sweeper(HydraSweeper):
    """sampler, direction, objectives, n_trials, n_jobs, study_name, storage, pruner,
    max_failure_rate and params, as ``conf/hydra/sweeper/optuna.yaml`` lists them."""

    def __init__(self, **settings: Any) -> None:
        self.settings = {
            key: OmegaConf.to_container(value, resolve=True)
            if isinstance(value, DictConfig | ListConfig)
            else value
            for key, value in settings.items()
        }

    def setup(self, *, hydra_context, task_function, config: DictConfig) -> None:
        self.config = config
        self.launcher = Plugins.instance().instantiate_launcher(
            config=config, hydra_context=hydra_context, task_function=task_function
        )

    def sweep(self, arguments: list[str]) -> None:
        from experiments.commands.cli_args import exit_on_error
        from experiments.errors import ExperimentError
        from experiments.search import loop

        try:
            loop.sweep(self.settings, self.config, self.launcher, arguments)
        except ExperimentError as exc:  # refused before any trial: one line, exit status 2
            exit_on_error(exc, to_log=True)
