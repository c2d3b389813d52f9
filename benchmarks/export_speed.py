"""Exported models against Keras, side by side: batch-1 latency, throughput, size, accuracy.

    python benchmarks/export_speed.py            # the compact CNN and MobileNet (~4 min)
    python benchmarks/export_speed.py --write    # and into RESULTS.md, this CPU's section

Two trained runs, through the real command line: the compact CNN on Fashion-MNIST (10,000
training images, 3 epochs) and MobileNet trained from scratch on ``dataset=shapes`` at
96 px (random initial weights: ImageNet's cannot be had here; 600 images per shape, 8
epochs), both in float32. MobileNet once had 150 per shape and 4 epochs: it stayed near
chance (33-43 %), and on its 88 test images one changed answer moved the accuracy 1.14
points, more than the gate allows a quantised file; with 360 test images one is 0.28. Each is
exported by ``python -m experiments.export`` (its whole command timed), in float and with
``litert.quantize=dynamic_int8``. Then Keras (``predict_on_batch``, what ``predict`` calls),
ONNX Runtime and LiteRT are timed by ``training.cost``'s protocol in three rounds, the runtimes
alternating within each round; the table gives each runtime's median over the rounds.
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

import numpy as np  # noqa: E402
from common import cpu_kind, last_run, machine, run  # noqa: E402
from results import write_part  # noqa: E402

ROUNDS = 3
MODELS = {
    "compact CNN, Fashion-MNIST 28 px": [
        "dataset.limit=10000",
        "trainer.epochs=3",
    ],
    "MobileNet (scratch), shapes 96 px": [
        "backbone=mobilenet",
        "backbone.weights=null",
        "phase=scratch",
        "dataset=shapes",
        "dataset.image_size=96",
        "dataset.per_class=600",
        "trainer.epochs=8",
    ],
}


def _metric(table: str, runtime: str, column: int) -> str:
    for line in table.splitlines():
        cells = [c.strip() for c in line.split("|")[1:-1]]
        if cells and cells[0] == runtime:
            return cells[column]
    return "?"


def one(label: str, overrides: list[str], folder: Path) -> list[str]:
    store = folder / "mlflow.db"
    uri = f"sqlite:///{store}"
    common = [f"mlflow.tracking_uri={uri}", "trainer.verbose=0", "trainer.precision=float32"]
    run(["-m", "experiments", *common, *overrides], folder)
    model = f"runs:/{last_run(store)[1].info.run_id}/model"
    wall, result = run(
        ["-m", "experiments.export", f"model={model}", f"mlflow.tracking_uri={uri}"], folder
    )
    _, quantised = run(
        [
            "-m",
            "experiments.export",
            f"model={model}",
            "formats=[litert]",
            "litert.quantize=dynamic_int8",
            "timing=false",
            f"mlflow.tracking_uri={uri}",
        ],
        folder,
        check=False,
    )
    refused = _refusal(quantised)  # the gate's word, reported as measured
    kept = Path(re.search(r"kept in (\S+):", result.stdout)[1])
    latency, throughput = _alternating(model, uri, kept)
    keras_ms = statistics.median(latency["keras"])
    size = float(_metric(result.stdout, "litert", 1))
    int8_size = float(_metric(quantised.stdout, "litert_dynamic_int8", 1))
    rows = []
    for runtime in ("keras", "onnx", "litert"):
        ms = statistics.median(latency[runtime])
        rows.append(
            f"| {label} | {runtime} | {ms:.3f} ({min(latency[runtime]):.3f}-"
            f"{max(latency[runtime]):.3f}) | {keras_ms / ms:.1f}x | "
            f"{statistics.median(throughput[runtime]):.0f} | {_metric(result.stdout, runtime, 1)} "
            f"| {_metric(result.stdout, runtime, 4)} |"
        )
    rows.append(
        f"| {label} | litert dynamic_int8{refused} | | | | {int8_size:.3f} "
        f"({int8_size / size:.2f}x) | {_metric(quantised.stdout, 'litert_dynamic_int8', 4)} |"
    )
    rows.append(f"| {label} | whole export command (3 formats, gate, timings) | {wall:.1f} s |")
    return rows


def _refusal(result) -> str:
    """Empty for an export kept; the parity gate's refusal, as the command said it, for a
    quantised file it did not keep (the gate working: a row, not a crash); else stop."""
    if result.returncode == 0:
        return ""
    said = [line for line in result.stderr.splitlines() if line.startswith("error: not kept")]
    if not said:
        raise SystemExit(f"failed: {' '.join(result.args)}\n{result.stderr[-3000:]}")
    return f", refused by the gate ({said[-1].removeprefix('error: not kept: ')})"


def _alternating(model: str, uri: str, kept: Path):
    """Each runtime's latency and throughput, ROUNDS times, alternating within a round."""
    from experiments.config.schema import CostConfig
    from experiments.exporting import runtimes, source
    from experiments.training import cost

    src = source.load(model, uri, 100)
    runners = {
        "keras": lambda b: np.asarray(src.model.predict_on_batch(b)),
        "onnx": runtimes.runner(kept / "onnx" / "model.onnx"),
        "litert": runtimes.runner(kept / "litert" / "model.tflite"),
    }
    shape = tuple(src.model.input_shape[1:])
    latency = {name: [] for name in runners}
    throughput = {name: [] for name in runners}
    for index in range(ROUNDS):
        order = list(runners) if index % 2 == 0 else list(reversed(runners))
        for name in order:
            figures = cost.runner_timings(runners[name], shape, CostConfig())
            latency[name].append(figures["latency_ms"])
            throughput[name].append(figures["throughput_ips"])
    return latency, throughput


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--write", action="store_true", help="into RESULTS.md")
    args = parser.parse_args()
    lines = [
        machine(),
        "",
        "| model | runtime | batch-1 latency ms, median (range of 3 rounds) | Keras / it "
        "| throughput b64 img/s | file MB | test accuracy (change) |",
        "|---|---|---|---:|---:|---|---|",
    ]
    print("\n".join(lines), flush=True)
    for label, overrides in MODELS.items():
        with tempfile.TemporaryDirectory() as tmp:
            rows = one(label, overrides, Path(tmp))
        print("\n".join(rows), flush=True)
        lines += rows
    if args.write:
        text = "### Exported models against Keras\n\n" + "\n".join(lines)
        write_part(cpu_kind(), "export", "python benchmarks/export_speed.py", text)


if __name__ == "__main__":
    main()
