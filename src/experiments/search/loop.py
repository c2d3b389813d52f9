"""A search's trials, asked and told one at a time, with no batch barrier.

Each of ``n_jobs`` workers (threads of the launching process) asks the study for a trial,
hands it to the launcher as a job of its own (job number = trial number) and waits for it;
it tells the study the result and asks again at once. A slow trial holds its own worker
only: the others keep starting trials. The launcher decides where a job runs (joblib's
processes, a SLURM node); Hydra's basic launcher runs jobs inside this process, one at a time.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, open_dict, read_write

from experiments.errors import ConfigError
from experiments.search import report, space, study
from experiments.search.trial import PRUNED_AT
from experiments.uris import redact

log = logging.getLogger(__name__)


def sweep(settings: dict, config: DictConfig, launcher, arguments: list[str]) -> None:
    """Run ``settings["n_trials"]`` trials of the study the settings describe."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)  # this module says what matters
    objectives = list(settings.get("objectives") or [config.metric])
    directions = study.directions(settings.get("direction"), objectives)
    searched = space.parse(settings.get("params"), arguments)
    epochs = int(config.get("trainer", {}).get("epochs", 1))
    pruner = study.pruner(settings.get("pruner"), epochs)
    if len(objectives) > 1 and type(pruner).__name__ != "NopPruner":
        raise ConfigError(
            "hydra.sweeper.pruner",
            f"Optuna prunes single-objective studies only, and this one has {objectives}; "
            "set hydra.sweeper.pruner=none",
        )
    sampler = study.sampler(settings.get("sampler"), config.get("seed"))
    url = study.storage_url(settings.get("storage"), config.hydra.sweep.dir)
    if not settings.get("storage"):  # beside the sweep: its folder may not exist yet
        Path(config.hydra.sweep.dir).mkdir(parents=True, exist_ok=True)
    found = study.open_study(
        url, settings.get("study_name"), directions, searched.distributions, sampler, pruner
    )
    _tell_the_jobs(config, url, found.study_name)
    log.info(
        "Optuna study %r in %s: %d trials, %d at a time, %s, %s",
        found.study_name,
        redact(url),
        settings["n_trials"],
        settings.get("n_jobs", 1),
        type(sampler).__name__,
        type(pruner).__name__,
    )
    workers = settings.get("n_jobs", 1)
    if type(launcher).__name__ == "BasicLauncher" and workers > 1:
        log.warning("Hydra's basic launcher runs one job at a time: n_jobs=%d acts as 1", workers)
        workers = 1
    first = len(found.trials)

    def launch(trial) -> list[float] | None:
        overrides = searched.overrides(trial.params)
        (result,) = launcher.launch([overrides], initial_job_idx=trial.number)
        return job_values(result, len(objectives))

    failure_rate = settings.get("max_failure_rate", 1.0)
    run_trials(found, searched.distributions, settings["n_trials"], workers, launch, failure_rate)
    report.summarise(found, url, objectives, first, config.hydra.sweep.dir)


def run_trials(
    found,
    distributions: dict,
    n_trials: int,
    workers: int,
    launch: Callable[[Any], list[float] | None],
    max_failure_rate: float = 1.0,
) -> None:
    """Ask, launch and tell ``n_trials`` trials on ``workers`` threads, each free again as
    soon as its trial ends. A trial whose job fails (or returns no finite value) is FAIL,
    one its job pruned PRUNED; the search stops asking once failures exceed
    ``max_failure_rate`` of the trials told."""
    lock = threading.Lock()
    counts = {"asked": 0, "told": 0, "failed": 0}
    running: dict[int, Any] = {}

    def next_trial():
        with lock:
            over = counts["told"] and counts["failed"] / counts["told"] > max_failure_rate
            if counts["asked"] >= n_trials or over:
                return None
            counts["asked"] += 1
            trial = found.ask(distributions)
            running[trial.number] = trial
            return trial

    def work() -> None:
        while (trial := next_trial()) is not None:
            try:
                values = launch(trial)
            except Exception:
                log.exception("trial %d could not be launched", trial.number)
                values = None
            with lock:
                counts["told"] += 1
                counts["failed"] += tell(found, running.pop(trial.number), values) == "FAIL"

    threads = [threading.Thread(target=work, daemon=True) for _ in range(max(1, workers))]
    for thread in threads:
        thread.start()
    try:
        while any(thread.is_alive() for thread in threads):  # Ctrl-C reaches this thread
            time.sleep(0.2)
    finally:
        with lock:
            for trial in running.values():  # interrupted: no trial stays RUNNING for ever
                tell(found, trial, None)
    if counts["told"] and counts["failed"] / counts["told"] > max_failure_rate:
        log.error(
            "%d of %d trials failed, more than max_failure_rate=%g: the search stopped",
            counts["failed"],
            counts["told"],
            max_failure_rate,
        )


def tell(found, trial, values: list[float] | None) -> str:
    """Record the trial's end: FAIL without values, PRUNED when its job was pruned (the
    job says so on the trial, ``trial.PRUNED_AT``), else COMPLETE; its state's name."""
    from optuna.trial import TrialState

    if values is None:
        done = found.tell(trial, state=TrialState.FAIL, skip_if_finished=True)
    elif PRUNED_AT in _stored(found, trial.number).user_attrs:  # the job wrote it there
        done = found.tell(trial, state=TrialState.PRUNED, skip_if_finished=True)
    else:
        done = found.tell(trial, values, skip_if_finished=True)
    return done.state.name


def _stored(found, number: int):
    """The trial as the storage has it now (the asked ``Trial`` keeps its first view)."""
    return next(t for t in found.get_trials(deepcopy=False) if t.number == number)


def job_values(result, count: int) -> list[float] | None:
    """A Hydra job's return value as ``count`` finite floats, or None (a failed trial)."""
    try:
        value = result.return_value  # raises the job's exception when it failed
    except Exception:
        return None
    if value is None:
        return None
    values = list(value) if isinstance(value, list | tuple) else [value]
    try:
        floats = [float(v) for v in values]
    except (TypeError, ValueError):
        return None
    if len(floats) != count or not all(math.isfinite(v) for v in floats):
        return None
    return floats


def _tell_the_jobs(config: DictConfig, url: str, name: str) -> None:
    """The storage and study every job reports to: Hydra composes each job's configuration
    again from the sweep's Hydra overrides, so they go there."""
    with read_write(config.hydra), open_dict(config.hydra):
        config.hydra.overrides.hydra.append(_override("hydra.sweeper.storage", url))
        config.hydra.overrides.hydra.append(_override("hydra.sweeper.study_name", name))


def _override(key: str, value: str) -> str:
    escaped = value.replace("\\", "\\\\").replace("'", "\\'")
    return f"{key}='{escaped}'"
