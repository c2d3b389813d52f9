"""A search's outcome: its trials counted by state, and its best trial or Pareto set.

Printed, and, when the sweep has an MLflow parent run, written on it: the counts as tags
(``trials.completed``, ``trials.pruned``, ``trials.failed``) and the text as
``summary/optuna.txt``, before the sweep's own summary ends the run.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from experiments.tracking.sweeps import PARENT_FILE
from experiments.uris import redact

log = logging.getLogger(__name__)


def summarise(found, url: str, objectives: list[str], first: int, sweep_dir: str) -> str:
    """The text for the trials of this search (from trial number ``first`` on) and the study."""
    counts = count(found, first)
    lines = [
        f"Optuna study {found.study_name!r}: this search ran {sum(counts.values())} trials: "
        f"{counts['completed']} completed, {counts['pruned']} pruned, {counts['failed']} failed "
        f"({len(found.trials)} in the study)",
        *best_lines(found, objectives),
        f"See it with: optuna-dashboard {redact(url)}",
    ]
    text = "\n".join(lines)
    print(text, flush=True)
    _log_to_parent(Path(sweep_dir) / PARENT_FILE, counts, text)
    return text


def count(found, first: int = 0) -> dict[str, int]:
    """Trials from number ``first`` on: completed, pruned, failed (FAIL or still running)."""
    states = [t.state.name for t in found.trials if t.number >= first]
    done = states.count("COMPLETE")
    pruned = states.count("PRUNED")
    return {"completed": done, "pruned": pruned, "failed": len(states) - done - pruned}


def best_lines(found, objectives: list[str]) -> list[str]:
    """The best trial (one objective) or every trial of the Pareto set (several)."""
    completed = [t for t in found.trials if t.state.name == "COMPLETE"]
    if not completed:
        return ["No trial completed."]
    if len(objectives) == 1:
        return ["Best trial: " + describe(found.best_trial, objectives)]
    front = sorted(found.best_trials, key=lambda t: t.number)
    trials = f"{len(front)} trial" + ("s" if len(front) > 1 else "")
    return [f"Pareto set ({trials}, {' and '.join(objectives)}):"] + [
        "  " + describe(trial, objectives) for trial in front
    ]


def describe(trial, objectives: list[str]) -> str:
    values = ", ".join(f"{n}={v:.6g}" for n, v in zip(objectives, trial.values, strict=True))
    params = " ".join(f"{k}={_short(v)}" for k, v in trial.params.items())
    return f"#{trial.number} {values} ({params})"


def _short(value) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _log_to_parent(parent_file: Path, counts: dict[str, int], text: str) -> None:
    if not parent_file.is_file():
        return
    import mlflow

    info = json.loads(parent_file.read_text())
    try:
        client = mlflow.MlflowClient(info["tracking_uri"])
        for state, n in counts.items():
            client.set_tag(info["run_id"], f"trials.{state}", str(n))
        client.log_text(info["run_id"], text + "\n", "summary/optuna.txt")
    except Exception as exc:  # the sweep's own summary says what is wrong with the store
        log.warning("could not write the search's summary on its parent run: %s", exc)
