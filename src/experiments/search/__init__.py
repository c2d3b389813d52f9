"""Hyperparameter searches (``hparams_search=optuna``): an Optuna study run through Hydra.

- ``space``: ``hydra.sweeper.params`` (Hydra's override grammar) as Optuna distributions;
- ``study``: the storage (a journal file beside the sweep, or an RDB URL), the sampler,
  the pruner, and a stored study checked against this search before any trial starts;
- ``loop``: ask-and-tell, each of ``n_jobs`` workers launching its next trial as soon as
  its last one ends, through whatever Hydra launcher the sweep uses;
- ``trial``: the job's side: its validation metric reported per epoch, pruned when the
  pruner says so, through the shared storage;
- ``report``: the trials counted and the best (or the Pareto set), on the sweep's parent run.

Hydra takes sweepers only from its ``hydra_plugins`` package:
``hydra_plugins.experiments_optuna.Sweeper`` hands everything to ``loop``.
"""
