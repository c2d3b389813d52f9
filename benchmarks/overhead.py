"""Part 2: the framework costs almost nothing.

The reference network, the same data (54,000 training / 6,000 validation images), epochs,
batch size, seed and op determinism, trained by ``python -m experiments`` (every MLflow
call, checkpoints, plots, the logged model) and by ``bare_keras.py``. Repeats alternate
which goes first. Training part: the run's ``train_time_s`` against the bare ``fit``;
fixed cost: everything else in each command's wall time (start-up, data, logging).
Goal: training-time ratio at most 1.05.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

from common import ROOT, median, run

GOAL = 1.05


def framework(epochs: int, limit: int | None) -> dict:
    import mlflow

    with tempfile.TemporaryDirectory() as tmp:
        store = Path(tmp) / "mlflow.db"
        extra = [f"dataset.limit={limit}"] if limit else []
        wall, _ = run(
            [
                "-m",
                "experiments",
                "backbone=custom_cnn",
                f"trainer.epochs={epochs}",
                "trainer.batch_size=32",
                "trainer.verbose=0",
                *extra,
                f"mlflow.tracking_uri=sqlite:///{store}",
            ],
            Path(tmp),
        )
        client = mlflow.MlflowClient(f"sqlite:///{store}")
        found = client.search_runs([client.get_experiment_by_name("experiments").experiment_id])
        metrics = found[0].data.metrics
    return {"train_s": metrics["train_time_s"], "wall_s": wall, "acc": metrics["test_accuracy"]}


def bare(epochs: int, limit: int | None) -> dict:
    extra = ["--limit", str(limit)] if limit else []
    wall, result = run(
        [
            str(ROOT / "benchmarks" / "bare_keras.py"),
            "--epochs",
            str(epochs),
            "--batch-size",
            "32",
            "--deterministic",
            *extra,
        ],
        ROOT,
    )
    out = json.loads(result.stdout.strip().splitlines()[-1])
    return {"train_s": out["fit_s"], "wall_s": wall, "acc": out["test_accuracy"]}


def measure(quick: bool = False) -> dict:
    epochs, repeats, limit = (1, 1, 10000) if quick else (3, 3, None)
    rows = {"framework": [], "bare": []}
    for i in range(repeats):
        order = ("framework", "bare") if i % 2 == 0 else ("bare", "framework")
        for name in order:
            rows[name].append((framework if name == "framework" else bare)(epochs, limit))
    return {"rows": rows, "epochs": epochs, "limit": limit}


def section(r: dict) -> str:
    rows = r["rows"]
    train = {k: median([x["train_s"] for x in v]) for k, v in rows.items()}
    wall = {k: median([x["wall_s"] for x in v]) for k, v in rows.items()}
    ratio = train["framework"] / train["bare"]
    fixed = {k: wall[k] - train[k] for k in rows}
    verdict = "met" if ratio <= GOAL else f"missed by {ratio - GOAL:.3f}"
    data = f"{r['limit']} training images" if r["limit"] else "54,000 training images"
    lines = [
        "## 2. The framework costs almost nothing",
        "",
        f"The reference network, {data}, {r['epochs']} epochs, batch 32, seed 42, op "
        f"determinism on (the framework's default), {len(rows['bare'])} repeat(s) each, "
        "alternating which goes first.",
        "",
        "| | training (s), median | runs (s) | whole command (s), median | fixed cost (s) |"
        " test acc |",
        "|---|---:|---|---:|---:|---:|",
    ]
    for name, label in (("bare", "bare Keras script"), ("framework", "`python -m experiments`")):
        runs = ", ".join(f"{x['train_s']:.1f}" for x in rows[name])
        accs = ", ".join(f"{x['acc']:.4f}" for x in rows[name])
        lines.append(
            f"| {label} | {train[name]:.1f} | {runs} | {wall[name]:.1f} | {fixed[name]:.1f} | "
            f"{accs} |"
        )
    lines += [
        "",
        f"Training-time ratio framework / bare: **{ratio:.3f}** (goal: at most {GOAL}): "
        f"{verdict}. The framework's fixed cost beyond the bare script's: "
        f"**{fixed['framework'] - fixed['bare']:.1f} s** (MLflow start-up and store, the "
        "dataset inputs, config and params, plots, the per-class table, the logged model).",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    print(section(measure(quick="--quick" in sys.argv)))
