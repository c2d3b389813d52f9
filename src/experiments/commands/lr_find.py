"""``python -m experiments.lr_find [overrides]``: the learning-rate range test of a run.

The overrides are those of the training run (``python -m experiments ...``): the same
data, model and phase. The phase runs as in training up to the stage that trains at
``optimizer.lr`` (fine-tuning warms its head up first); the finder ramps the rate on that
model, and the command stops there. It prints the suggestion as the override to copy and
logs the curve and the suggestion to a run of its own, in the MLflow experiment
``lr_find``. ``optimizer.lr=find`` in a training run does the same and then trains.
"""

from __future__ import annotations

import logging
import os

from omegaconf import OmegaConf

from experiments.commands import quiet
from experiments.commands.cli_args import run_command
from experiments.config.schema import flatten
from experiments.errors import ConfigError, TrainingError, first_line
from experiments.tracking import outbox, provenance, store
from experiments.tracking.run_context import run_context
from experiments.training import lr_find, lr_find_log, phases, precision, train
from experiments.training.settings import compose, validate

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")

log = logging.getLogger("experiments")

EXPERIMENT = "lr_find"
USAGE = """\
usage: python -m experiments.lr_find [override ...]

The learning-rate range test (Smith 2017) on the model that `python -m experiments` with
the same overrides would train: the rate grows exponentially batch after batch, the loss
is smoothed, the ramp stops when it diverges, and the weights are put back. It prints the
suggested rate as the override to copy, and logs the curve (lr_find/curve.png, the
suggestion marked) and the metric lr_find.suggested_lr to a run of the experiment lr_find.

overrides: any of a training run's (python -m experiments --help), and (default):
  lr_find.min_lr=1e-07       the ramp's first rate
  lr_find.max_lr=10.0        the ramp's last rate; it stops earlier once the loss diverges
  lr_find.steps=100          training batches in the ramp
  lr_find.smoothing=0.9      weight of the past in the loss's moving average
  lr_find.diverge=4.0        stop once the smoothed loss exceeds this many times its minimum
  lr_find.rule=steepest      steepest: where the smoothed loss falls fastest;
                             minimum: the rate of its lowest point, divided by 10

examples:
  python -m experiments.lr_find
  python -m experiments.lr_find optimizer=sgd lr_find.steps=200
  python -m experiments.lr_find backbone=mobilenet backbone.weights=imagenet \\
      dataset.image_size=96 phase=finetune phase.init_from=runs:/<id>/model
  python -m experiments optimizer.lr=find          (find, then train, in one run)

exit status: 0 a rate suggested, 2 bad input or a curve without a suggestion"""


class _Found(Exception):
    """Ends the phase where its stage at ``optimizer.lr`` would begin to train."""

    def __init__(self, found: lr_find.Found):
        self.found = found


class _UntilFound:
    """The phase's callback factory: its warm-up trains bare, the finder's result ends it."""

    def __call__(self, stage: str, first_step: int) -> list:
        import keras

        return [keras.callbacks.TerminateOnNaN()]

    def tag(self, tags: dict[str, str]) -> None:
        pass

    def lr_found(self, found: lr_find.Found) -> None:
        raise _Found(found)


def _compose(argv: list[str]):
    """The run's configuration, with ``optimizer.lr=find`` whatever the overrides say."""
    from hydra.errors import HydraException

    if any(arg in ("-m", "--multirun") for arg in argv):
        raise ConfigError(argv[0], "lr_find takes one run's overrides, not a sweep")
    try:
        cfg = compose(argv)
    except HydraException as exc:  # "Could not override 'x.y'." and, from its cause, why
        why = f" {first_line(exc.__cause__)}" if exc.__cause__ else ""
        raise ConfigError("overrides", first_line(exc) + why) from None
    OmegaConf.update(cfg, "optimizer.lr", lr_find.FIND)
    validate(cfg)
    return cfg


def _find(cfg) -> tuple[lr_find.Found, object]:
    """Run the phase until its stage at ``optimizer.lr`` has its rate; the result and data."""
    data = train.load_data(cfg)
    chosen = train.choose_precision(cfg, data)
    train.set_seed(cfg.seed, cfg.trainer.deterministic)
    precision.apply(chosen.policy)
    phase_module = phases.module(cfg.phase.name)
    model = phase_module.build(cfg, data)
    try:
        phase_module.train(model, cfg, data, _UntilFound())
    except _Found as stop:
        return stop.found, data
    raise TrainingError(f"phase={cfg.phase.name} trained no stage at optimizer.lr")


def _log(cfg, found: lr_find.Found, data) -> str:
    """The finder's run in the experiment ``lr_find``; its id."""
    import mlflow

    uri = store.resolve_tracking_uri(cfg.mlflow.tracking_uri)
    experiment_id = store.init_store(uri, EXPERIMENT)
    tags = {
        "experiments.kind": "lr_find",
        "backbone": cfg.backbone.name,
        "phase": cfg.phase.name,
        "dataset": cfg.dataset.name,
        **provenance.tags(),
    }
    name = f"lr_find-{cfg.backbone.name}-{cfg.phase.name}-{cfg.optimizer.name}"
    with run_context(uri, tags, experiment_id=experiment_id, run_name=name) as run:
        params = {**flatten(cfg), "data.train_size": len(data.x_train)}
        keep = outbox.keep_json("params.json", params)
        run.outbox.send("params", lambda: mlflow.log_params(params), keep)
        lr_find_log.record(run.outbox, found)
    return run.id


def _lr_find(argv: list[str]) -> int:
    if any(arg in ("-h", "--help") for arg in argv):
        print(USAGE)
        return 0
    cfg = _compose(argv)
    quiet.import_tensorflow()
    try:
        found, data = _find(cfg)
    finally:
        train.free_graph()
    run_id = _log(cfg, found, data)
    rule = lr_find.RULES[found.rule]
    print(found.summary())
    print(f"suggested learning rate: {found.suggestion:.3g} ({rule}); logged in run {run_id}")
    print(f"optimizer.lr={found.suggestion:.3g}")
    return 0


def main(argv: list[str] | None = None) -> None:
    """``python -m experiments.lr_find [overrides]``; exits 0 or 2 (bad input)."""
    run_command(_lr_find, argv)


if __name__ == "__main__":
    main()
