"""Optuna searches (experiments.search): the space, the storage, pruning, no batch barrier.

The sweeper runs fake jobs here (tests/search_app.py: no Keras, a real study in a real
storage); tests/test_sweep.py runs one real search with pruning through the CLI.
"""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import optuna
import pytest
from helpers import user_environment
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

from experiments.config.schema import CONF_DIR
from experiments.errors import ConfigError
from experiments.search import loop, space, study

APP = Path(__file__).with_name("search_app.py")


def fake_search(workdir: Path, *overrides: str) -> subprocess.CompletedProcess:
    """``python tests/search_app.py -m`` with the project's sweeper config, in ``workdir``."""
    command = [sys.executable, str(APP), "-m", f"hydra.searchpath=[file://{CONF_DIR}]"]
    return subprocess.run(
        [*command, *overrides],
        cwd=workdir,
        env=user_environment(),
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_params_are_read_with_hydras_override_grammar():
    searched = space.parse(
        {
            "optimizer.lr": "tag(log, interval(1e-5, 1e-2))",
            "trainer.batch_size": "choice(32, 64, 128)",
            "backbone.dropout": "interval(0.0, 0.5)",
            "trainer.epochs": "range(1, 10, 3)",
        },
        ["backbone.dropout=0.1", "trainer.batch_size=choice(16,32)", "+note='a b'"],
    )
    assert searched.distributions == {
        "optimizer.lr": FloatDistribution(1e-5, 1e-2, log=True),
        "trainer.batch_size": CategoricalDistribution([16, 32]),  # the command line's wins
        "trainer.epochs": IntDistribution(1, 7, step=3),  # range's stop is excluded
    }
    assert searched.fixed == ["backbone.dropout=0.1", "+note='a b'"]
    assert searched.overrides({"optimizer.lr": 0.001, "trainer.batch_size": 16}) == [
        "optimizer.lr=0.001",
        "trainer.batch_size=16",
        "backbone.dropout=0.1",
        "+note='a b'",
    ]
    with pytest.raises(ConfigError, match="cannot read"):
        space.parse({"x": "interval(1,"}, [])


def test_an_unknown_sampler_or_pruner_lists_the_known_ones():
    with pytest.raises(ConfigError, match="unknown sampler 'tpee'; known: tpe, random"):
        study.sampler("tpee", 0)
    with pytest.raises(ConfigError, match="known: .*optuna.samplers.TPESampler"):
        study.sampler({"_target_": "optuna.samplers.Nope"}, 0)
    with pytest.raises(ConfigError, match="unknown pruner 'mean'; known: median, hyperband, none"):
        study.pruner("mean", 3)
    assert type(study.sampler({"_target_": "optuna.samplers.RandomSampler", "seed": 1}, 0))
    assert type(study.pruner("hyperband", 3)).__name__ == "HyperbandPruner"
    assert study.directions(None, ["val_accuracy", "latency_ms"]) == ["maximize", "minimize"]
    with pytest.raises(ConfigError, match="2 directions for 1 objectives"):
        study.directions(["maximize", "minimize"], ["val_accuracy"])


def test_median_judges_once_4_trials_have_completed_and_never_at_the_first_epoch():
    """The measured setting (benchmarks/search_pruning.py), not Optuna's defaults (5, 0)."""
    search = optuna.create_study(direction="maximize", pruner=study.pruner("median", 10))

    def lagging(completed_before: int) -> list[bool]:
        """Whether a trial far below the others is pruned at its epochs 0 and 1."""
        assert len(search.get_trials(states=(optuna.trial.TrialState.COMPLETE,))) == (
            completed_before
        )
        trial = search.ask()
        said = []
        for step in (0, 1):
            trial.report(0.1, step)
            said.append(trial.should_prune())
        search.tell(trial, state=optuna.trial.TrialState.PRUNED)
        return said

    for done in range(4):
        assert lagging(done) == [False, False]  # fewer than 4 completed: no judgement yet
        trial = search.ask()
        for step in (0, 1):
            trial.report(0.9, step)
        search.tell(trial, 0.9)
    assert lagging(4) == [False, True]  # the first epoch's result never prunes


def test_an_unusable_storage_is_refused_in_one_sentence_naming_it(tmp_path):
    space_ = {"x": FloatDistribution(0, 1)}

    def refusal(url: str) -> str:
        with pytest.raises(ConfigError) as error:
            study.open_study(url, "s", ["maximize"], space_, None, None)
        message = str(error.value)
        assert "\n" not in message and url.split("?")[0].split("@")[-1] in message
        assert ":pw@" not in message  # a password is never shown
        return message

    (tmp_path / "a_file").write_text("")
    refusal(str(tmp_path / "a_file" / "optuna.journal"))  # its folder is a file
    refusal("postgresql+psycopg://user:pw@127.0.0.1:1/optuna")  # nothing listens there
    db = tmp_path / "optuna.db"
    study.open_study(f"sqlite:///{db}", "s", ["maximize"], space_, None, None)
    read_only = f"sqlite:///file:{db}?mode=ro&uri=true"
    assert "cannot be opened or written" in refusal(read_only)


def test_a_stored_study_for_another_search_is_refused_naming_the_fix(tmp_path):
    url = str(tmp_path / "optuna.journal")
    space_ = {"x": FloatDistribution(0, 1)}
    first = study.open_study(url, "lr", ["maximize"], space_, None, None)
    first.tell(first.ask(space_), 0.5)
    with pytest.raises(ConfigError, match="'lr' .* made to maximize, not to minimize.*study_name="):
        study.open_study(url, "lr", ["minimize"], space_, None, None)
    other = {"x": FloatDistribution(0, 2)}
    with pytest.raises(ConfigError, match="'lr' .*another parameter space .*in x.*study_name="):
        study.open_study(url, "lr", ["maximize"], other, None, None)
    again = study.open_study(url, "lr", ["maximize"], space_, None, None)  # the same: continued
    assert len(again.trials) == 1


def test_a_free_worker_starts_the_next_trial_while_a_slow_one_runs():
    """Trial 0 waits until the five after it have ended: with a batch of two it never could."""
    found = optuna.create_study(direction="maximize")
    others_done = threading.Event()
    ended: list[int] = []

    def launch(trial):
        if trial.number == 0:
            waited = others_done.wait(timeout=30)
            return [1.0] if waited else None
        ended.append(trial.number)
        if len(ended) == 5:
            others_done.set()
        return None if trial.number == 3 else [0.5]  # trial 3 fails: the search goes on

    loop.run_trials(found, {"x": FloatDistribution(0, 1)}, 6, 2, launch)
    states = {t.number: t.state.name for t in found.trials}
    assert states == {0: "COMPLETE", 1: "COMPLETE", 2: "COMPLETE", 3: "FAIL", 4: "COMPLETE",
                      5: "COMPLETE"}  # fmt: skip
    assert found.best_trial.number == 0


def test_failures_beyond_max_failure_rate_stop_the_search():
    found = optuna.create_study()
    loop.run_trials(found, {"x": FloatDistribution(0, 1)}, 10, 1, lambda trial: None, 0.5)
    assert [t.state.name for t in found.trials] == ["FAIL"]


@pytest.mark.slow
def test_a_parallel_search_with_pruning_is_kept_for_optuna_and_continued(workdir):
    """joblib with 2 jobs; the study in a journal beside the sweep, as Optuna reads it."""
    search = [
        "hydra/launcher=joblib",
        "hydra.launcher.n_jobs=2",
        "hydra.sweeper.n_jobs=2",
        "hydra.sweeper.n_trials=8",
        # Stops x=0.9 after its first epoch (0.21 < 0.3), never x=0.3 (0.33, 0.67, 1).
        "hydra.sweeper.pruner={_target_:optuna.pruners.ThresholdPruner,lower:0.3}",
        "x=choice(0.3,0.9,3.0)",  # 3.0 fails: the search goes on
    ]
    result = fake_search(workdir, *search)
    assert result.returncode == 0, result.stderr[-3000:]
    (journal,) = workdir.glob("multirun/*/*/optuna.journal")
    storage = optuna.storages.JournalStorage(
        optuna.storages.journal.JournalFileBackend(str(journal))
    )
    trials = optuna.load_study(study_name="fake", storage=storage).trials
    states = [t.state.name for t in trials]
    assert len(trials) == 8 and {"COMPLETE", "PRUNED", "FAIL"} <= set(states)
    expected = {0.3: ("COMPLETE", 3), 0.9: ("PRUNED", 1), 3.0: ("FAIL", None)}
    for t in trials:  # the parameters, the value, the state, the epochs reported
        state, reported = expected[t.params["x"]]
        assert t.state.name == state and (t.value is None) == (state == "FAIL")
        if reported:
            assert len(t.intermediate_values) == reported
            assert t.value == t.intermediate_values[reported - 1]
    counts = f"{states.count('COMPLETE')} completed, {states.count('PRUNED')} pruned, "
    assert counts + f"{states.count('FAIL')} failed" in result.stdout
    assert f"optuna-dashboard {journal}" in result.stdout
    # The same search, pointed at that journal, continues the study.
    again = fake_search(workdir, *search[:3], "hydra.sweeper.n_trials=2", search[-1],
                        f"hydra.sweeper.storage={journal}")  # fmt: skip
    assert again.returncode == 0, again.stderr[-3000:]
    assert len(optuna.load_study(study_name="fake", storage=storage).trials) == 10


def test_several_objectives_give_the_pareto_set(workdir):
    result = fake_search(
        workdir,
        "hydra.sweeper.objectives=[score,cost]",
        "hydra.sweeper.direction=[maximize,minimize]",
        "hydra.sweeper.n_trials=5",
        "hydra.sweeper.sampler=random",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Pareto set (" in result.stdout and "score and cost" in result.stdout
    refused = fake_search(
        workdir, "hydra.sweeper.objectives=[score,cost]", "hydra.sweeper.pruner=median"
    )
    assert refused.returncode == 2
    assert "prunes single-objective studies only" in refused.stderr


def test_a_job_of_several_objectives_returns_each_as_its_run_recorded_it(store_uri, monkeypatch):
    import mlflow

    from experiments.search import trial

    monkeypatch.setenv("MLFLOW_TRACKING_URI", store_uri)
    with mlflow.start_run():
        mlflow.log_metrics({"best_val_accuracy": 0.9, "val_accuracy": 0.8, "latency_ms": 1.5})
    # val_accuracy as the run table ranks it: the best epoch's.
    assert trial.values_of_last_run(["val_accuracy", "latency_ms"]) == [0.9, 1.5]
    with pytest.raises(KeyError, match="no size_mb; it recorded best_val_accuracy"):
        trial.values_of_last_run(["size_mb"])
