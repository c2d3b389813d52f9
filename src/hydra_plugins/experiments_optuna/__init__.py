"""Hydra's Optuna sweeper with ``storage=sqlite:///<file>`` that works.

See ``experiments.commands.optuna_search``.

It lives here because Hydra instantiates sweepers only from the ``hydra_plugins`` package.
Hydra imports this module at every start to look for plugins: without the sweep extra
there is nothing to extend, and Optuna itself is imported only when a search starts.
"""

try:
    from hydra_plugins.hydra_optuna_sweeper.optuna_sweeper import OptunaSweeper
except ImportError:  # hydra-optuna-sweeper is not installed (no sweep extra)
    OptunaSweeper = None

if OptunaSweeper is not None:

    class Sweeper(OptunaSweeper):
        def __init__(self, storage=None, **kwargs) -> None:
            from experiments.commands.optuna_search import (
                storage_for,  # imports optuna: not at start-up
            )

            super().__init__(storage=storage_for(storage), **kwargs)
