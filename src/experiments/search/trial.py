"""The job's side of a search: report the validation metric each epoch, stop when pruned.

A job of an Optuna search finds its study in its own Hydra configuration: the sweeper
puts the storage and the study's name into every job's ``hydra.sweeper``, and launches
trial ``n`` as job number ``n``. So whichever process or node runs the job, it reports to
the study through the shared storage, and asks the pruner there, not the sweeper's memory.
A pruned trial stops after that epoch and says so on the trial (``pruned_at_step``); its
run keeps its curves and training metrics but is not tested nor logged as a model (the
search abandoned it), ends FINISHED, and carries the tag ``optuna.state=PRUNED``. The
sweeper then tells the study PRUNED (FAIL if the job failed).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Any

from experiments.metrics import sort_key
from experiments.search import study
from experiments.tracking import outbox

log = logging.getLogger(__name__)

SWEEPER = "hydra_plugins.experiments_optuna.Sweeper"
PRUNED_AT = "pruned_at_step"  # a trial's user attribute: the step its pruner stopped it at


@dataclass
class Reporter:
    """One trial of a study, as its job reports to it."""

    url: str  # the storage (study.storage_url)
    study_name: str
    number: int  # the trial's number in its study
    pruner: Any  # the sweeper's setting: median, hyperband, none or {_target_: ...}
    epochs: int  # the run's epochs (hyperband's largest budget)
    pruned_at: int | None = None  # the step the pruner stopped the trial at
    tagged: bool = False  # its run carries the study and trial number
    _trial: Any = None
    _broken: bool = False

    def report(self, value: float, step: int) -> bool:
        """Report ``value`` at ``step``; whether the pruner stops the trial here.

        A study that cannot be reached never fails the training: it is said once, and
        the trial trains on without reporting.
        """
        if self._broken or not math.isfinite(value):
            return False
        try:
            trial = self._open()
            if len(trial.study.directions) > 1:  # Optuna keeps no per-epoch values for these
                self._broken = True
                return False
            trial.report(value, step)
            if not trial.should_prune():
                return False
            trial.set_user_attr(PRUNED_AT, step)  # the sweeper tells PRUNED once the job ends
        except Exception as exc:
            self._broken = True
            log.warning("trial %d cannot report to its study (%s): not pruned", self.number, exc)
            return False
        self.pruned_at = step
        return True

    def _open(self):
        import optuna

        if self._trial is None:
            storage = study.open_storage(self.url)
            found = optuna.load_study(
                study_name=self.study_name,
                storage=storage,
                pruner=study.pruner(self.pruner, self.epochs),
            )
            study_id = storage.get_study_id_from_name(self.study_name)
            trial_id = storage.get_trial_id_from_study_id_trial_number(study_id, self.number)
            self._trial = optuna.trial.Trial(found, trial_id)
        return self._trial


def current(epochs: int) -> Reporter | None:
    """The trial this job runs, when it is a job of this project's Optuna sweeper."""
    sweeper = _sweeper()
    if sweeper is None or not sweeper.get("storage"):
        return None
    from hydra.core.hydra_config import HydraConfig

    return Reporter(
        url=str(sweeper.storage),
        study_name=str(sweeper.study_name),
        number=int(HydraConfig.get().job.num),
        pruner=_plain(sweeper.get("pruner")),
        epochs=epochs,
    )


def objectives() -> list[str] | None:
    """The metrics this job returns, when its search has several objectives."""
    sweeper = _sweeper()
    names = list(sweeper.get("objectives") or []) if sweeper is not None else []
    return [str(name) for name in names] if len(names) > 1 else None


def _plain(value):
    from omegaconf import DictConfig, OmegaConf

    return OmegaConf.to_container(value, resolve=True) if isinstance(value, DictConfig) else value


def _sweeper():
    from hydra.core.hydra_config import HydraConfig

    if not HydraConfig.initialized():
        return None
    sweeper = HydraConfig.get().get("sweeper")
    return sweeper if sweeper is not None and sweeper.get("_target_") == SWEEPER else None


def callback(reporter: Reporter, metric: str, first_step: int, sender):
    """A Keras callback reporting ``metric`` each epoch; the trial stops when pruned.

    ``sender`` (the run's Outbox) tags the run with its study and trial, and a pruned
    trial's run with ``optuna.state=PRUNED``. A stage after the one pruned stops at once.
    """
    import keras
    import mlflow

    def tag(tags: dict[str, str]) -> None:
        sender.send("tags", lambda: mlflow.set_tags(tags), outbox.keep_json("tags.json", tags))

    class ReportToStudy(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            if reporter.pruned_at is not None:
                self.model.stop_training = True
            elif not reporter.tagged:
                tag({"optuna.study": reporter.study_name, "optuna.trial": str(reporter.number)})
                reporter.tagged = True

        def on_epoch_end(self, epoch, logs=None):
            value = (logs or {}).get(metric)
            if value is None or reporter.pruned_at is not None:
                return
            if reporter.report(float(value), first_step + epoch):
                self.model.stop_training = True
                tag({"optuna.state": "PRUNED"})
                log.info("Trial %d pruned after epoch %d", reporter.number, first_step + epoch)

    return ReportToStudy()


def values_of_last_run(names: list[str]) -> list[float]:
    """The objectives' values as this process's last MLflow run recorded them.

    Each is the run table's column for it (``val_accuracy``: the best epoch's), so the
    study and the sweep's summary rank trials on the same numbers.
    """
    import mlflow

    run = mlflow.last_active_run()
    recorded = run.data.metrics if run is not None else {}
    missing = [name for name in names if sort_key(name) not in recorded]
    if missing:
        recorded_names = ", ".join(sorted(recorded))
        raise KeyError(f"the run recorded no {', '.join(missing)}; it recorded {recorded_names}")
    return [float(recorded[sort_key(name)]) for name in names]
