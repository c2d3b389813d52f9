"""No batch barrier: a search's trials as each worker frees, against batches of n_jobs.

    python benchmarks/search_barrier.py [--trials 20] [--jobs 2] [--fast 1.0] [--write]

Fake jobs that sleep (``--fast`` seconds; trial 0 five times as long) run through Hydra's
real joblib launcher, made as a sweep makes it. The same study settings are run twice:
by ``experiments.search.loop.run_trials`` (each worker asks its next trial as soon as its
last ends) and by the batched loop hydra-optuna-sweeper 1.3 ran (ask ``jobs`` trials,
launch them as one batch, tell them, ask again). Printed: both wall times and their ratio.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from common import cpu_kind, machine
from results import write_part


def sleeper(cfg) -> float:
    """The fake job: sleep ``cfg.sleep_s`` and return it."""
    time.sleep(cfg.sleep_s)
    return cfg.sleep_s


def joblib_launcher(folder: Path, jobs: int):
    """Hydra's joblib launcher, as ``-m hydra/launcher=joblib`` sets it up, running ``sleeper``."""
    from hydra import compose, initialize_config_dir
    from hydra._internal.callbacks import Callbacks
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.hydra_config import HydraConfig
    from hydra.core.plugins import Plugins
    from hydra.types import HydraContext

    conf = folder / "conf"
    conf.mkdir()
    (conf / "config.yaml").write_text("sleep_s: 0.0\n")
    initialize_config_dir(str(conf), version_base="1.3").__enter__()
    overrides = ["hydra/launcher=joblib", f"hydra.launcher.n_jobs={jobs}"]
    cfg = compose("config", [*overrides, f"hydra.sweep.dir={folder}/sweep"], True)
    HydraConfig.instance().set_config(cfg)
    context = HydraContext(GlobalHydra.instance().config_loader(), Callbacks(cfg))
    return Plugins.instance().instantiate_launcher(
        config=cfg, hydra_context=context, task_function=sleeper
    )


def overrides(trial, fast: float) -> list[str]:
    return [f"sleep_s={fast * 5 if trial.number == 0 else fast}"]


def streaming(launcher, trials: int, jobs: int, fast: float) -> float:
    import optuna

    from experiments.search import loop

    study = optuna.create_study()
    space = {"x": optuna.distributions.FloatDistribution(0, 1)}

    def launch(trial):
        (result,) = launcher.launch([overrides(trial, fast)], initial_job_idx=trial.number)
        return loop.job_values(result, 1)

    started = time.perf_counter()
    loop.run_trials(study, space, trials, jobs, launch)
    return time.perf_counter() - started


def batched(launcher, trials: int, jobs: int, fast: float) -> float:
    """hydra-optuna-sweeper 1.3's loop: ask a batch, launch it, wait for all, tell."""
    import optuna

    from experiments.search import loop

    study = optuna.create_study()
    space = {"x": optuna.distributions.FloatDistribution(0, 1)}
    started = time.perf_counter()
    left = trials
    while left > 0:
        batch = [study.ask(space) for _ in range(min(jobs, left))]
        results = launcher.launch(
            [overrides(t, fast) for t in batch], initial_job_idx=batch[0].number
        )
        for trial, result in zip(batch, results, strict=True):
            loop.tell(study, trial, loop.job_values(result, 1))
        left -= len(batch)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--fast", type=float, default=1.0)
    parser.add_argument("--write", action="store_true", help="write the part in RESULTS.md")
    args = parser.parse_args()
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    with tempfile.TemporaryDirectory() as tmp:
        launcher = joblib_launcher(Path(tmp), args.jobs)
        launcher.launch([["sleep_s=0"]] * args.jobs, initial_job_idx=1000)  # workers started
        times = {
            "each worker starts its next trial when free": streaming(
                launcher, args.trials, args.jobs, args.fast
            ),
            f"batches of {args.jobs} (hydra-optuna-sweeper 1.3)": batched(
                launcher, args.trials, args.jobs, args.fast
            ),
        }
    ideal = max(5 * args.fast, (args.trials - 1 + 5) * args.fast / args.jobs)
    lines = [f"- {name}: {seconds:.2f} s" for name, seconds in times.items()]
    streamed, batch = times.values()
    lines += [f"- ratio: {streamed / batch:.2f} (no idle worker at all would take {ideal:.1f} s)"]
    text = (
        f"{args.trials} fake trials (sleeps of {args.fast:g} s, trial 0 of {5 * args.fast:g} s), "
        f"{args.jobs} at a time through Hydra's joblib launcher\n\n" + "\n".join(lines)
    )
    print(f"machine: {machine()}\n{text}")
    if args.write:
        heading = f"### No batch barrier in a search\n\nMachine: {machine()}\n\n"
        command = f"python benchmarks/search_barrier.py --trials {args.trials} --jobs {args.jobs}"
        write_part(cpu_kind(), "search_barrier", f"{command} --fast {args.fast:g} --write",
                   heading + text + "\n")  # fmt: skip


if __name__ == "__main__":
    main()
