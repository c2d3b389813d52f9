"""``python -m experiments.compare``: the runs of an experiment or a sweep, side by side.

Prints one table per evaluation set in the terminal (runs scored on different images are
never ranked together) and writes them, with a bar chart of test accuracy, the validation
curves and the accuracy–latency front, to ``output_dir`` and to MLflow, on a comparison
run of its own (a child of the sweep's parent when ``parent=`` is given).
"""

from __future__ import annotations

import logging
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from experiments import uris
from experiments.commands.cli_args import parse, run_command
from experiments.errors import ConfigError, TrackingError
from experiments.reporting import summary
from experiments.tracking import store

log = logging.getLogger(__name__)
EXAMPLES = (
    "metric=test_accuracy",
    "parent=<sweep parent run id> output_dir=comparison-sweep",
    "\"filter=tags.dataset = 'shapes'\" register_as=shapes",
)


@dataclass
class MlflowArgs:
    tracking_uri: str | None = None  # null = $MLFLOW_TRACKING_URI, else ./mlflow.db
    experiment_name: str = "experiments"  # the experiment whose runs are compared


@dataclass
class CompareArgs:
    parent: str | None = None  # a sweep's parent run id: compare its children
    filter: str | None = None  # an MLflow filter string, e.g. "tags.backbone = 'vgg16'"
    metric: str = "val_accuracy"  # sort by it, best first (its best epoch for val_*)
    output_dir: str = "comparison"  # where the table and the plots are written
    log: bool = True  # also log them to MLflow
    register_as: str | None = None  # register the best run's model under this name (@champion)
    mlflow: MlflowArgs = field(default_factory=MlflowArgs)


def select_runs(client, experiment_id: str, parent: str | None, filter_string: str | None):
    """Training runs (no sweeps, no comparisons) matching the selection."""
    from mlflow.exceptions import MlflowException

    clauses = ["tags.`experiments.kind` IS NULL"]
    if parent:
        clauses.append(f"tags.`mlflow.parentRunId` = '{parent}'")
    if filter_string:
        clauses.append(filter_string)  # MLflow's filter grammar has AND only
    try:
        return client.search_runs([experiment_id], " AND ".join(clauses), max_results=5000)
    except MlflowException as exc:
        if exc.error_code != "INVALID_PARAMETER_VALUE":
            raise
        raise ConfigError("filter", str(exc).splitlines()[0]) from exc


def _compare(argv: list[str]) -> int:
    cfg = parse(argv, CompareArgs, "experiments.compare", EXAMPLES)
    import mlflow

    uri = store.resolve_tracking_uri(cfg.mlflow.tracking_uri)
    shown = uris.redact(uri)
    if store.store_missing(uri):
        raise TrackingError(f"no MLflow store at {shown}: set mlflow.tracking_uri= or run here")
    client = mlflow.MlflowClient(uri)
    if parent := cfg.parent:
        try:
            experiment_id = client.get_run(parent).info.experiment_id
        except Exception as exc:
            raise ConfigError("parent", f"no run {parent} in {shown}") from exc
    else:
        experiment = client.get_experiment_by_name(cfg.mlflow.experiment_name)
        if experiment is None:
            raise TrackingError(
                f"mlflow.experiment_name={cfg.mlflow.experiment_name}: no such experiment in {uri}"
            )
        experiment_id = experiment.experiment_id
    runs = select_runs(client, experiment_id, cfg.parent, cfg.filter)
    if not runs:
        raise ConfigError("filter", f"no runs to compare in {shown} for this selection")
    sets = summary.report(client, runs, cfg.metric)
    print(summary.text(sets, cfg.metric))
    paths = summary.write_files(client, sets, cfg.metric, Path(cfg.output_dir))
    print(f"\nWrote {', '.join(str(p) for p in paths)}")
    problems: list[str] = []
    if cfg.log or cfg.register_as:
        target = _comparison_run(client, experiment_id, cfg)
        try:
            summary.log_to_run(client, target, sets, cfg.metric)
            if cfg.register_as:
                where = {"run_id": target, "tracking_uri": uri}
                problems = summary.register_best(client, where, sets, cfg.metric, cfg.register_as)
        except BaseException:
            client.set_terminated(target, "FAILED")
            raise
        client.set_terminated(target, "FINISHED")
        print(f"Logged to run {target} in {shown}")
    for problem in problems:
        print(problem, file=sys.stderr)
    return 2 if problems else 0


def _comparison_run(client, experiment_id: str, cfg) -> str:
    """A run of its own for the comparison; under the sweep's parent when ``parent=`` is given."""

    tags = {"experiments.kind": "comparison", "filter": cfg.filter or "", "metric": cfg.metric}
    if cfg.parent:
        tags["mlflow.parentRunId"] = cfg.parent
    name = time.strftime("compare-%Y%m%d-%H%M%S")
    return client.create_run(
        experiment_id, run_name=name, tags=store.default_tags(tags)
    ).info.run_id


def main(argv: list[str] | None = None) -> None:
    run_command(_compare, argv)


if __name__ == "__main__":
    main()
