"""The learning-rate range test (Smith 2017, "Cyclical Learning Rates", section 3.3).

The model trains for ``lr_find.steps`` batches while the rate grows exponentially from
``min_lr`` to ``max_lr``; the loss of each batch is smoothed (an exponential moving
average, bias-corrected as in Adam), and the ramp stops once the smoothed loss exceeds
``diverge`` times its lowest value. Then every weight goes back to where it was: the
finder trains with an optimizer of its own, so the model's own (compiled) optimizer and
its state are never touched.

The suggestion follows ``lr_find.rule``:

- ``steepest``: the rate where the smoothed loss falls fastest against log(rate), over
  the points before its minimum, the first tenth left out (the average is still young);
- ``minimum``: the rate of the smoothed loss's minimum, divided by 10.

The finder runs on the model as its phase trains it (``phases.stage_lr``): the whole
network from scratch, the head on the frozen base's features, or the unfrozen top of the
base after the head's warm-up.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from experiments.config.rules import first_broken, one_of
from experiments.data import stream
from experiments.errors import TrainingError
from experiments.training import optimizers

log = logging.getLogger(__name__)

FIND = "find"  # optimizer.lr=find
RULES = {  # lr_find.rule: how the suggestion is read from the smoothed curve
    "steepest": "steepest descent of the smoothed loss",
    "minimum": "the smoothed loss's minimum / 10",
}
MIN_STEPS = 10
SKIP = 0.1  # share of the first points the steepest rule leaves out


@dataclass
class Found:
    rates: np.ndarray  # the rate of each step taken
    losses: np.ndarray  # the loss of each step's batch
    smoothed: np.ndarray  # the bias-corrected moving average of ``losses``
    suggestion: float
    rule: str
    stopped: str  # why the ramp ended: "diverged" or "end of the ramp"

    def summary(self) -> str:
        best = int(np.argmin(self.smoothed))
        return (
            f"{len(self.rates)} steps from lr={self.rates[0]:.3g} to {self.rates[-1]:.3g} "
            f"({self.stopped}); lowest smoothed loss {self.smoothed[best]:.4g} "
            f"at lr={self.rates[best]:.3g}"
        )


def wanted(cfg) -> bool:
    """Whether the run asks for the finder (``optimizer.lr=find``)."""
    return cfg.optimizer.lr == FIND


def check(cfg) -> None:
    """The finder's settings (``cfg.lr_find``) make a ramp it can read."""
    s = cfg.lr_find
    first_broken(
        [
            (
                not wanted(cfg) or cfg.trainer.strategy == "default",
                "optimizer.lr",
                f"find runs on one device, not under trainer.strategy={cfg.trainer.strategy}: "
                "run python -m experiments.lr_find with the same overrides and pass its rate",
            ),
            (s.min_lr > 0, "lr_find.min_lr", f"must be > 0, got {s.min_lr}"),
            (
                s.min_lr < s.max_lr,
                "lr_find.min_lr",
                f"must be below lr_find.max_lr, got {s.min_lr} >= {s.max_lr}",
            ),
            (
                s.steps >= MIN_STEPS,
                "lr_find.steps",
                f"must be >= {MIN_STEPS} for a curve to read, got {s.steps}",
            ),
            (0 <= s.smoothing < 1, "lr_find.smoothing", f"must be in [0, 1), got {s.smoothing}"),
            (s.diverge > 1, "lr_find.diverge", f"must be > 1, got {s.diverge}"),
            one_of(s.rule, RULES, "lr_find.rule", "rule"),
        ]
    )


def ramp(min_lr: float, max_lr: float, steps: int) -> np.ndarray:
    """``steps`` rates from ``min_lr`` to ``max_lr``, each the last times the same factor."""
    return min_lr * (max_lr / min_lr) ** (np.arange(steps) / (steps - 1))


def smooth(losses, beta: float) -> np.ndarray:
    """The moving average ``a = beta * a + (1 - beta) * loss``, divided by ``1 - beta**n``."""
    average, out = 0.0, []
    for n, loss in enumerate(losses, start=1):
        average = beta * average + (1 - beta) * float(loss)
        out.append(average / (1 - beta**n))
    return np.array(out)


def suggest(rates: np.ndarray, smoothed: np.ndarray, rule: str) -> float:
    """The rate ``rule`` picks from a smoothed curve (see the module's docstring)."""
    lowest = int(np.argmin(smoothed))
    if rule == "minimum":
        return float(rates[lowest] / 10)
    start = int(len(rates) * SKIP)
    if lowest - start < 2:
        raise TrainingError(
            f"the loss did not fall over the ramp (lowest at lr={rates[lowest]:.3g}, step "
            f"{lowest + 1}); lower lr_find.min_lr, or use lr_find.rule=minimum"
        )
    descent = np.gradient(smoothed[start : lowest + 1], np.log(rates[start : lowest + 1]))
    return float(rates[start + int(np.argmin(descent))])


def find(model, cfg, train) -> Found:
    """Run the range test on ``model`` over ``train`` (inputs, labels); its weights restored."""
    s = cfg.lr_find
    rates = ramp(s.min_lr, s.max_lr, s.steps)
    saved = model.get_weights()
    try:
        losses, stopped = _losses(model, cfg, train, rates)
    finally:
        model.set_weights(saved)
    if not len(losses) or not np.isfinite(losses[0]):
        raise TrainingError(
            f"the loss is NaN or infinite from the first step (lr={rates[0]:.3g}): the finder "
            "has no curve to read; check the data and the model"
        )
    losses = losses[: _finite_prefix(losses)]
    smoothed = smooth(losses, s.smoothing)
    rates = rates[: len(losses)]
    suggestion = suggest(rates, smoothed, s.rule)
    found = Found(rates, np.asarray(losses), smoothed, suggestion, s.rule, stopped)
    log.info("Learning-rate finder: %s; suggests lr=%.3g (%s)", found.summary(), suggestion, s.rule)
    return found


def _finite_prefix(losses) -> int:
    bad = [i for i, loss in enumerate(losses) if not np.isfinite(loss)]
    return bad[0] if bad else len(losses)


def _losses(model, cfg, train, rates: np.ndarray) -> tuple[list[float], str]:
    """The loss of each step of the ramp, until it ends or the smoothed loss diverges."""
    s = cfg.lr_find
    optimizer = _optimizer(model, cfg)
    step = _step(model, optimizer)
    batches = iter(_batches(cfg, train))
    losses: list[float] = []
    average, best = 0.0, np.inf
    for n, rate in enumerate(rates, start=1):
        optimizer.learning_rate.assign(float(rate))
        x, y = next(batches)
        loss = float(step(x, y))
        losses.append(loss)
        if not np.isfinite(loss):
            return losses, "diverged"
        average = s.smoothing * average + (1 - s.smoothing) * loss
        smoothed = average / (1 - s.smoothing**n)
        best = min(best, smoothed)
        if smoothed > s.diverge * best:
            return losses, "diverged"
    return losses, "end of the ramp"


def _optimizer(model, cfg):
    """The run's optimizer (its momentum...) at a constant rate; loss scaling for float16."""
    import keras

    optimizer = optimizers.build(cfg.optimizer, lr=cfg.lr_find.min_lr)
    if model.dtype_policy.name == "mixed_float16":
        optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
    return optimizer


def _step(model, optimizer):
    """One training step on a batch, as ``fit`` takes it; returns the batch's loss."""
    import keras
    import tensorflow as tf

    loss_of = keras.losses.SparseCategoricalCrossentropy()
    variables = model.trainable_variables

    @tf.function
    def step(x, y):
        with tf.GradientTape() as tape:
            loss = loss_of(y, tf.cast(model(x, training=True), "float32"))
            if model.losses:
                loss += tf.add_n(model.losses)
            scaled = optimizer.scale_loss(loss)
        optimizer.apply(tape.gradient(scaled, variables), variables)
        return loss

    return step


def _batches(cfg, train):
    """The training set in shuffled batches, pass after pass."""
    x, y = train
    return stream.training(x, y, cfg.trainer.batch_size, cfg.seed).repeat()
