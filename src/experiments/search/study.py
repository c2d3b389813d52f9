"""The study a search runs: its storage, sampler and pruner, and the study kept there.

The storage is named by a string that every job, dashboard and later command can open:
a journal file (the default, ``optuna.journal`` in the sweep's folder; any path without
``://``), written under Optuna's file lock, so jobs on several nodes of a shared file
system can append to it; or an RDB URL (``sqlite:///…``, ``postgresql+psycopg://…``),
handed to Optuna as it is.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from experiments.errors import ConfigError, first_line
from experiments.metrics import lower_is_better
from experiments.uris import redact

SAMPLERS = {  # name: Optuna's class in optuna.samplers
    "tpe": "TPESampler",
    "random": "RandomSampler",
    "cmaes": "CmaEsSampler",
    "gp": "GPSampler",
    "qmc": "QMCSampler",
    "nsgaii": "NSGAIISampler",
    "nsgaiii": "NSGAIIISampler",
    "bruteforce": "BruteForceSampler",
}
PRUNERS = {  # name: Optuna's class in optuna.pruners
    "median": "MedianPruner",
    "hyperband": "HyperbandPruner",
    "none": "NopPruner",
    "percentile": "PercentilePruner",
    "successive_halving": "SuccessiveHalvingPruner",
    "threshold": "ThresholdPruner",
}
SPACE_ATTR = "experiments.search_space"  # the study's parameters, as its first search set them
JOURNAL = "optuna.journal"


def storage_url(storage: str | None, sweep_dir: str) -> str:
    """The storage as every process names it: an RDB URL as given, or a journal file's path."""
    if storage and "://" in str(storage):
        return str(storage)
    path = Path(str(storage)).expanduser() if storage else Path(sweep_dir) / JOURNAL
    return str(path.resolve())


def open_storage(url: str):
    """Optuna's storage for ``url``; one that cannot be opened is refused in one sentence."""
    import optuna
    from optuna.storages.journal import JournalFileBackend, JournalStorage

    try:
        if "://" in url:
            return optuna.storages.RDBStorage(url)
        return JournalStorage(JournalFileBackend(url))
    except Exception as exc:
        raise _unusable(url, exc) from None


def _unusable(url: str, exc: BaseException) -> ConfigError:
    return ConfigError(
        "hydra.sweeper.storage",
        f"the study storage {redact(url)} cannot be opened or written ({first_line(exc)}); "
        "give a writable journal file or a reachable database URL",
    )


def sampler(setting: Any, seed: int | None):
    """``tpe``, ``random``... (seeded with ``seed``) or ``{_target_: optuna.samplers.X, ...}``."""
    if isinstance(setting, str) or setting is None:
        return _made("sampler", setting or "tpe", SAMPLERS, {"seed": seed})
    return _made("sampler", setting, SAMPLERS, {})


def pruner(setting: Any, epochs: int):
    """``median`` (judging once 4 trials have completed, never at a trial's first epoch),
    ``hyperband`` (budgets of 1 to ``epochs`` epochs), ``none``, or
    ``{_target_: optuna.pruners.X, ...}``.

    The median's settings are not Optuna's defaults (5 trials, from the first epoch): they
    were chosen by ``benchmarks/search_pruning.py``, whose figures docs/how-to/searches.md gives.
    """
    if isinstance(setting, str) or setting is None:
        name = setting or "none"
        defaults = {
            "median": {"n_startup_trials": 4, "n_warmup_steps": 1},
            "hyperband": {"min_resource": 1, "max_resource": max(1, epochs)},
        }
        return _made("pruner", name, PRUNERS, defaults.get(name, {}))
    return _made("pruner", setting, PRUNERS, {})


def _made(kind: str, setting: Any, known: dict[str, str], arguments: dict):
    """Optuna's ``kind`` named ``setting`` (a short name, or a dict with ``_target_``)."""
    import optuna

    module = getattr(optuna, f"{kind}s")
    if isinstance(setting, str):
        if setting not in known:
            raise ConfigError(f"hydra.sweeper.{kind}", _unknown(kind, setting, known))
        return getattr(module, known[setting])(**arguments)
    target = str(setting.get("_target_", ""))
    name = target.removeprefix(f"optuna.{kind}s.")
    if name not in known.values():
        raise ConfigError(f"hydra.sweeper.{kind}", _unknown(kind, target, known))
    return getattr(module, name)(**{k: v for k, v in setting.items() if not k.startswith("_")})


def _unknown(kind: str, name: str, known: dict[str, str]) -> str:
    classes = ", ".join(f"optuna.{kind}s.{c}" for c in known.values())
    return f"unknown {kind} {name!r}; known: {', '.join(known)} (or {{_target_: {classes}}})"


def directions(direction: Any, objectives: list[str]) -> list[str]:
    """One direction per objective: as given, or, for a single ``direction``, each
    objective's own (minimise losses and costs, maximise accuracies)."""
    if isinstance(direction, str) or direction is None:
        if len(objectives) == 1:
            return [direction or ("minimize" if lower_is_better(objectives[0]) else "maximize")]
        return ["minimize" if lower_is_better(name) else "maximize" for name in objectives]
    given = [str(d) for d in direction]
    if len(given) != len(objectives):
        raise ConfigError(
            "hydra.sweeper.direction",
            f"{len(given)} directions for {len(objectives)} objectives {objectives}; give one each",
        )
    return given


def open_study(url: str, name: str, wanted: list[str], space: dict, sampler_, pruner_):
    """The study ``name`` in ``url``, created or continued; refused when it was made for
    other directions or another parameter space (checked by writing to it, too)."""
    import optuna
    from optuna.distributions import distribution_to_json

    storage = open_storage(url)
    try:
        study = optuna.create_study(
            storage=storage,
            study_name=name,
            sampler=sampler_,
            pruner=pruner_,
            directions=wanted,
            load_if_exists=True,
        )
        ours = {key: json.loads(distribution_to_json(d)) for key, d in sorted(space.items())}
        _check_same_search(study, url, wanted, ours)
        study.set_user_attr(SPACE_ATTR, ours)  # a write: a read-only storage fails here
    except ConfigError:
        raise
    except Exception as exc:
        raise _unusable(url, exc) from None
    return study


def _check_same_search(study, url: str, wanted: list[str], ours: dict) -> None:
    stored = [d.name.lower() for d in study.directions]
    kept = study.user_attrs.get(SPACE_ATTR)
    if kept is None and study.trials:  # a study another tool made: its latest trial's space
        from optuna.distributions import distribution_to_json

        last = study.trials[-1].distributions
        kept = {key: json.loads(distribution_to_json(d)) for key, d in sorted(last.items())}
    problem = None
    if stored != wanted:
        problem = f"was made to {'/'.join(stored)}, not to {'/'.join(wanted)}"
    elif kept is not None and kept != ours:
        changed = sorted(k for k in kept.keys() | ours.keys() if kept.get(k) != ours.get(k))
        problem = f"was made for another parameter space (differs in {', '.join(changed)})"
    if problem:
        raise ConfigError(
            "hydra.sweeper.study_name",
            f"the study {study.study_name!r} in {redact(url)} {problem}; "
            "start a new one with hydra.sweeper.study_name=<a new name>",
        )
