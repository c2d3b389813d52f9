"""What the learning-rate finder leaves in an MLflow run: its suggestion and its curve.

The metric ``lr_find.suggested_lr``, ``lr_find/curve.png`` (the suggestion marked) and
``lr_find/curve.json`` (the rule, why the ramp stopped, and the rate, loss and smoothed
loss of every step). A metric, not a param: the suggestion is a result, and a param
would split a seed sweep of ``optimizer.lr=find`` into one configuration per seed. A run
of ``optimizer.lr=find`` logs them beside its training; ``python -m experiments.lr_find``
in a run of their own. Every call goes through the run's outbox.
"""

from __future__ import annotations

import json

from experiments.reporting import lr_curve
from experiments.tracking import outbox
from experiments.training.lr_find import Found


def record(sender, found: Found) -> None:
    """The suggestion and the curve, through ``sender`` (the run's outbox)."""
    import matplotlib.pyplot as plt  # not for --help
    import mlflow

    sender.metrics({"lr_find.suggested_lr": found.suggestion})
    curve = {
        "rule": found.rule,
        "suggestion": found.suggestion,
        "stopped": found.stopped,
        "lr": found.rates.tolist(),
        "loss": found.losses.tolist(),
        "smoothed": found.smoothed.tolist(),
    }
    text = json.dumps(curve)
    path = "lr_find/curve.json"
    sender.send(
        path,
        lambda: mlflow.log_text(text, path),
        outbox.keep_file(path, lambda p: p.write_text(text)),
    )
    figure = lr_curve.figure(
        found.rates, found.losses, found.smoothed, found.suggestion, found.rule
    )
    path = "lr_find/curve.png"
    sender.send(
        path, lambda: mlflow.log_figure(figure, path), outbox.keep_file(path, figure.savefig)
    )
    plt.close(figure)
