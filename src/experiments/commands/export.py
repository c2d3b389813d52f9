"""``python -m experiments.export model=... formats=[...]``: ship a model to other runtimes.

Each format is written by Keras' ``model.export``, then run by its own runtime on the
source run's test images and compared with the Keras model (``exporting.parity``). Only
the formats that pass the gate are kept: logged to an export run (experiment ``exports``,
tagged with its source run), copied to ``output/<export run id>/<format>/`` and, with
``register=true``, registered. The command exits 1 when any format failed, printing the
table all the same.
"""

from __future__ import annotations

import os
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from omegaconf import OmegaConf

from experiments.commands import quiet
from experiments.commands.cli_args import parse, run_command
from experiments.config.schema import CostConfig
from experiments.errors import ConfigError, first_line
from experiments.exporting import formats, parity, record, runtimes
from experiments.exporting import source as sources
from experiments.tracking.store import resolve_tracking_uri
from experiments.training import cost

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")

USAGE = """\
usage: python -m experiments.export model=<model> [key=value ...]

Export a trained model to other runtimes, and check each file against the Keras model on
the source run's test images: top-1 agreement, max |dp|, accuracy. Formats that fail the
gate are not kept; the command then exits 1.

keys (default):
  model (required)             runs:/<run_id>/model, models:/<name>@<alias>, models:/<name>/<v>,
                               or a model folder
  formats=[tf_saved_model,litert,onnx]
  litert.quantize=none         none, float16, dynamic_int8, or int8 (calibrated on 100 of the
                               run's training images)
  gate.max_accuracy_drop=1.0   points of test accuracy a quantised format may lose
  gate.images=2000             test images compared (a fixed draw when the split has more)
  timing=true                  latency at batch 1 and throughput at batch 64, every runtime
  output=exports               where the passing files are copied: <output>/<export run id>/
  register=false               register the ONNX model as <name>-onnx (alias champion) and
                               tag the source model version with each format's figures
  name=null                    the registered model's name (default: the source's, models:/)
  mlflow.tracking_uri=null     null = $MLFLOW_TRACKING_URI, else sqlite:///<cwd>/mlflow.db
  mlflow.experiment_name=exports

examples:
  python -m experiments.export model=runs:/<run_id>/model
  python -m experiments.export model=models:/shapes@champion formats=[onnx] register=true

exit status: 0 every format passed, 1 a format failed its export or the gate, 2 bad input"""

BATCH = 256  # images per call when comparing


@dataclass
class LitertArgs:
    quantize: str = "none"


@dataclass
class GateArgs:
    max_accuracy_drop: float = 1.0
    images: int = 2000


@dataclass
class MlflowArgs:
    tracking_uri: str | None = None
    experiment_name: str = "exports"


@dataclass
class ExportArgs:
    model: str
    formats: list[str] = field(default_factory=lambda: list(formats.FORMATS))
    litert: LitertArgs = field(default_factory=LitertArgs)
    gate: GateArgs = field(default_factory=GateArgs)
    timing: bool = True
    output: str = "exports"
    register: bool = False
    name: str | None = None
    mlflow: MlflowArgs = field(default_factory=MlflowArgs)


@dataclass
class Row:
    """One line of the table: the Keras model, or one format."""

    name: str
    size_mb: float | None = None
    parity: parity.Parity | None = None
    timing: dict = field(default_factory=dict)
    failure: str | None = None  # why it is not kept; None when it passed
    path: Path | None = None

    def metrics(self) -> dict[str, float]:
        values = {} if self.size_mb is None else {f"{self.name}.size_mb": self.size_mb}
        values.update({f"{self.name}.{key}": value for key, value in self.timing.items()})
        if self.parity is not None:
            values.update(self.parity.metrics(self.name))
        return values


def _check(cfg) -> list[formats.Format]:
    if OmegaConf.is_missing(cfg, "model") or not cfg.model:
        raise ConfigError("model", "is required, e.g. model=models:/<name>@champion")
    chosen = formats.check(list(cfg.formats), cfg.litert.quantize)
    if cfg.gate.images < 1:
        raise ConfigError("gate.images", f"must be >= 1, got {cfg.gate.images}")
    if cfg.gate.max_accuracy_drop < 0:
        raise ConfigError(
            "gate.max_accuracy_drop", f"must be >= 0, got {cfg.gate.max_accuracy_drop}"
        )
    if cfg.register and not (cfg.name or cfg.model.startswith("models:/")):
        raise ConfigError("register", "needs name=<registered model> when model= is not models:/")
    return chosen


def predict_all(run, images: np.ndarray) -> np.ndarray:
    return np.concatenate([run(images[i : i + BATCH]) for i in range(0, len(images), BATCH)])


def _export_one(src, fmt, folder: Path, cfg, reference: np.ndarray) -> Row:
    """Export, run, compare and time one format; a converter's refusal is the row's failure."""
    name = (
        fmt.name
        if fmt.name != "litert" or cfg.litert.quantize == "none"
        else (f"litert_{cfg.litert.quantize}")
    )
    row = Row(name)
    try:
        path = formats.export(src.model, fmt, folder / fmt.name, cfg.litert.quantize, src.sample)
        formats.write_info(folder / fmt.name, src.class_names, src.model.input_shape[1:])
        run = runtimes.runner(path)
        probs = predict_all(run, src.images)
    except Exception as exc:  # noqa: BLE001  a converter's or runtime's refusal, said in one line
        row.failure = f"export failed: {_reason(exc)}"
        return row
    row.path, row.size_mb = path, formats.size_mb(path)
    row.parity = parity.compare(reference, probs, src.labels)
    quantised = formats.is_quantised(fmt, cfg.litert.quantize)
    row.failure = parity.verdict(row.parity, quantised, cfg.gate.max_accuracy_drop)
    if cfg.timing:
        row.timing = cost.runner_timings(run, tuple(src.model.input_shape[1:]), CostConfig())
    return row


def _reason(exc: BaseException) -> str:
    """The converter's message, with the layer or op it names when it names one."""
    if isinstance(exc, formats.ConversionRefused):
        return str(exc)
    text = str(exc)
    for line in text.splitlines():
        if any(word in line for word in ("op ", "Op ", "layer", "Layer", "not supported")):
            return line.strip()[:300]
    return first_line(exc)


def table(rows: list[Row], where: str) -> str:
    """The side-by-side table, as Markdown (printed and logged)."""
    head = (
        "| runtime | size MB | top-1 agreement | max abs dp | accuracy (change) "
        "| latency b1 ms | throughput b64 img/s | gate |"
    )
    lines = [f"Compared on {where}.", "", head, "|" + "---|" * 8]
    for row in rows:
        p = row.parity
        agreement = "" if p is None else f"{100 * p.agreement:.2f} %"
        max_dp = "" if p is None else f"{p.max_dp:.1e}"
        accuracy = ""
        if p is not None and p.accuracy is not None:
            accuracy = f"{100 * p.accuracy:.2f} % ({p.accuracy_change:+.2f})"
        latency = f"{row.timing['latency_ms']:.3f}" if "latency_ms" in row.timing else ""
        rate = f"{row.timing['throughput_ips']:.0f}" if "throughput_ips" in row.timing else ""
        size = "" if row.size_mb is None else f"{row.size_mb:.3f}"
        gate = "reference" if row.name == "keras" else (row.failure or "pass")
        lines.append(
            f"| {row.name} | {size} | {agreement} | {max_dp} | {accuracy} | {latency} | {rate} "
            f"| {gate} |"
        )
    return "\n".join(lines)


def _keras_row(src, reference: np.ndarray, cfg) -> Row:
    row = Row("keras", size_mb=cost.size_mb(src.model))
    accuracy = parity.accuracy(reference, src.labels)
    row.parity = parity.Parity(1.0, 0.0, accuracy, None if accuracy is None else 0.0)
    if cfg.timing:
        keras_run = lambda b: np.asarray(src.model.predict_on_batch(b))  # noqa: E731
        row.timing = cost.runner_timings(keras_run, tuple(src.model.input_shape[1:]), CostConfig())
    return row


def _export(argv: list[str]) -> int:
    if any(arg in ("-h", "--help") for arg in argv):
        print(USAGE)
        return 0
    cfg = parse(argv, ExportArgs, "experiments.export")
    chosen = _check(cfg)
    quiet.import_tensorflow()
    tracking_uri = resolve_tracking_uri(cfg.mlflow.tracking_uri)
    src = sources.load(cfg.model, tracking_uri, cfg.gate.images)
    reference = predict_all(lambda b: np.asarray(src.model.predict_on_batch(b)), src.images)

    output = Path(cfg.output).resolve()
    output.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".export-", dir=output) as tmp:
        rows = [_keras_row(src, reference, cfg)]
        rows += [_export_one(src, fmt, Path(tmp), cfg, reference) for fmt in chosen]
        text = table(rows, src.where)
        print(text)
        kept = [row for row in rows[1:] if row.failure is None]
        run_id = record.export_run(cfg, tracking_uri, src, rows, kept, text)
        final = output / run_id
        for row in kept:  # renames on one file system: a folder is whole or absent
            final.mkdir(exist_ok=True)
            os.replace(row.path.parent, final / row.path.parent.name)
            row.path = final / row.path.parent.name / row.path.name
    failed = [row for row in rows[1:] if row.failure is not None]
    if kept:
        print(f"\nkept in {final}: " + ", ".join(str(row.path.relative_to(final)) for row in kept))
    if failed:
        print(
            "error: not kept: " + "; ".join(f"{row.name}: {row.failure}" for row in failed),
            file=sys.stderr,
        )
        return 1
    if cfg.register:
        record.register(cfg, tracking_uri, src, run_id, rows)
    return 0


def main(argv: list[str] | None = None) -> None:
    """``python -m experiments.export key=value ...``; exits 0, 1 (a format failed) or 2."""
    run_command(_export, argv)


if __name__ == "__main__":
    main()
