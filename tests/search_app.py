"""A fake job for the Optuna sweeper: no Keras, the sweeper and the job's study for real.

``score`` climbs with each "epoch" towards ``1 - (x - 0.3)**2``; each epoch is reported to
the study as a training job reports its validation metric, and stops when pruned. With
``objectives=[score,cost]`` the job returns both (``cost`` is ``x``).
"""

from __future__ import annotations

import time

import hydra
from omegaconf import DictConfig

from experiments.search import trial


@hydra.main(config_path="fixtures/search_app", config_name="config", version_base="1.3")
def main(cfg: DictConfig):
    reporter = trial.current(cfg.epochs)
    score = 0.0
    for epoch in range(cfg.epochs):
        time.sleep(cfg.sleep_s)
        score = (1 - (cfg.x - 0.3) ** 2) * (epoch + 1) / cfg.epochs
        if reporter is not None and reporter.report(score, epoch):
            break
    if cfg.x > cfg.fail_above:
        raise RuntimeError(f"x={cfg.x} is above fail_above")
    objectives = trial.objectives()
    return [score, cfg.x] if objectives else score


if __name__ == "__main__":
    main()
