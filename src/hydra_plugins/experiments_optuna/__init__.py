"""Hydra's Optuna sweeper with ``storage=sqlite:///<file>`` that works (experiments.optuna_search).

It lives here because Hydra instantiates sweepers only from the ``hydra_plugins`` package.
"""

from hydra_plugins.hydra_optuna_sweeper.optuna_sweeper import OptunaSweeper

from experiments.optuna_search import storage_for


class Sweeper(OptunaSweeper):
    def __init__(self, storage=None, **kwargs) -> None:
        super().__init__(storage=storage_for(storage), **kwargs)
