"""``python -m experiments.predict model=... inputs=...``: classify image files with a logged model.

MLflow and TensorFlow are imported inside the functions, so that ``--help`` and a rejected
command line answer at once.
"""

from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

import numpy as np
from omegaconf import OmegaConf

from experiments.commands import quiet
from experiments.commands.cli_args import parse, run_command
from experiments.data import images, listing, stream
from experiments.errors import ConfigError
from experiments.exporting import loaded
from experiments.reporting import calibration
from experiments.reporting.ranking import format_top_k, top_classes
from experiments.tracking.logged_models import load_logged_model, source_run
from experiments.tracking.store import resolve_tracking_uri, store_missing

# TensorFlow's C++ start-up chatter would bury the one-line errors this command prints, and
# MLflow's "Downloading artifacts" bars the predictions themselves.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")

OUTPUTS = ("text", "json")
USAGE = """\
usage: python -m experiments.predict model=<model> inputs=<image file or folder> [key=value ...]

Print the most probable classes of each image, as a model logged by a training run sees them.

keys (default):
  model (required)           runs:/<run_id>/model, models:/<name>/<version>, a model folder,
                             or an export: .onnx, .tflite, SavedModel folder, runs:/<id>/onnx
  inputs (required)          an image file, or a folder: its image files, recursively, sorted
  top_k=4                    classes printed per image
  output=text                text (the reference report's format) or json (one document)
  timing=false               print the model's load time and the images per second on stderr
  calibrated=false           temperature-scaled probabilities: the temperature the model's
                             run fitted on its validation split (runs:/ and models:/ only)
  mlflow.tracking_uri=null   store of runs:/ and models:/ URIs; null = $MLFLOW_TRACKING_URI,
                             else sqlite:///<cwd>/mlflow.db

examples:
  python -m experiments.predict model=runs:/<run_id>/model inputs=samples/
  python -m experiments.predict model=models:/shapes/1 inputs=cat.png top_k=2 output=json

exit status: 0 every image predicted, 1 some image could not be decoded (the others are
still predicted), 2 a bad argument, model or inputs path"""
# Images per forward pass: larger batches amortise the per-call overhead. Memory holds only
# the few batches in flight, however large the folder.
BATCH = 128


@dataclass
class MlflowArgs:
    tracking_uri: str | None = None


@dataclass
class PredictArgs:
    model: str  # no default: OmegaConf marks it missing, and _check names it
    inputs: str
    top_k: int = 4
    output: str = "text"
    timing: bool = False
    calibrated: bool = False
    mlflow: MlflowArgs = field(default_factory=MlflowArgs)


def load_model(uri: str, tracking_uri: str):
    """The Keras model at ``uri`` loaded safely, or an export run by its runtime (``loaded``)."""
    import mlflow

    if not urlparse(uri).scheme and (exported := loaded.from_path(Path(uri), f"model={uri}")):
        return exported
    if uri.startswith(("runs:/", "models:/")) and store_missing(tracking_uri):
        # MLflow would create an empty database here and then report the run as missing.
        raise ConfigError(
            f"model={uri}",
            f"no MLflow store at {tracking_uri}; set mlflow.tracking_uri= or $MLFLOW_TRACKING_URI",
        )
    mlflow.set_tracking_uri(tracking_uri)
    if exported := loaded.from_uri(uri):  # the onnx flavour, an export run's files
        return exported
    try:
        keras_model, description = load_logged_model(uri, key=f"model={uri}")
    except ConfigError as exc:
        raise ConfigError(f"model={uri}", str(exc).split(": ", 1)[1]) from None
    model = _SafeModel(keras_model, description)
    input_shape(model, uri)  # fail now, before any image is read, if the input is not an image
    return model


class _SafeModel:
    """A Keras model loaded in safe mode, with its MLmodel description as ``metadata``."""

    def __init__(self, keras_model, description):
        self.keras_model, self.metadata = keras_model, description

    def predict(self, batch) -> np.ndarray:
        """The class probabilities of one batch of images."""
        return np.asarray(self.keras_model.predict_on_batch(batch))


def input_shape(model, uri: str = "model") -> tuple[int, int]:
    """``(size, channels)`` from the signature's ``(-1, size, size, channels)`` image tensor."""
    schema = model.metadata.get_input_schema()
    if schema is None or not schema.is_tensor_spec():
        raise ConfigError(f"model={uri}", "has no tensor input signature: cannot tell image size")
    shape = tuple(schema.inputs[0].shape)
    if len(shape) != 4 or shape[1] != shape[2] or shape[1] < 1 or shape[3] not in (1, 3):
        raise ConfigError(
            f"model={uri}", f"input shape {shape} is not (-1, size, size, 1 or 3) images"
        )
    return shape[1], shape[3]


def class_names(model, count: int) -> list[str]:
    """The class names logged with the model, or ``class 0``, ``class 1``... without them."""
    names = (model.metadata.metadata or {}).get("class_names")
    if names and len(names) == count:
        return [str(name) for name in names]
    return [f"class {i}" for i in range(count)]


def list_inputs(inputs: str) -> list[Path]:
    """``inputs`` itself if a file, else the image files under it (``data.listing``)."""
    root = Path(inputs)
    if root.is_file():
        return [root]  # named explicitly: tried whatever its suffix
    if not root.is_dir():
        raise ConfigError(f"inputs={inputs}", "no such file or folder")
    paths = listing.image_files(root)  # what training reads of the same folder
    if not paths:
        suffixes = " ".join(sorted(images.IMAGE_SUFFIXES))
        raise ConfigError(f"inputs={inputs}", f"no image files in this folder ({suffixes})")
    return paths


def predict_files(model, paths: list[Path], top_k: int) -> list[dict]:
    """Per path ``{"input", "predictions": [{"class", "probability"}, ...]}`` or ``"error"``."""
    outcomes = _probabilities(model, paths)
    names = _names_for(model, outcomes)
    return [
        _entry(path, outcome, names, top_k) for path, outcome in zip(paths, outcomes, strict=True)
    ]


def _probabilities(model, paths: list[Path], clock: dict | None = None) -> list[np.ndarray | str]:
    """Each path's class probabilities, or the reason it could not be decoded.

    The files stream through ``stream.decoded_files``: decoded on every core, in order,
    while the model predicts the batch before. ``clock`` (when given) receives the
    seconds spent predicting, and those spent waiting for decoded images.
    """
    clock = {} if clock is None else clock
    size, channels = input_shape(model)
    outcomes: list[np.ndarray | str] = []
    started, predicting = time.perf_counter(), 0.0
    for pixels, reasons in stream.decoded_files(paths, size, channels, BATCH):
        begun = time.perf_counter()
        probs = model.predict(pixels.astype(np.float32))  # the signature's type
        predicting += time.perf_counter() - begun
        for row, reason in zip(probs, reasons, strict=True):
            outcomes.append(reason.decode() if reason else row.astype(np.float64))
    clock["predict_s"] = predicting
    clock["decode_s"] = time.perf_counter() - started - predicting
    clock["images"] = sum(isinstance(o, np.ndarray) for o in outcomes)
    return outcomes


def _calibrated(outcomes: list, uri: str, tracking_uri: str) -> list:
    """Each probability vector scaled by the temperature the model's run fitted."""
    import mlflow

    run_id = _source_run(uri, tracking_uri)
    temperature = mlflow.MlflowClient(tracking_uri).get_run(run_id).data.metrics.get("temperature")
    if temperature is None:
        raise ConfigError(
            "calibrated",
            f"run {run_id} logged no temperature (no validation images, or a run from before "
            "calibration was logged); use calibrated=false",
        )
    print(
        f"probabilities calibrated: temperature {temperature:.4g}, fitted on run {run_id}'s "
        "validation split",
        file=sys.stderr,
    )
    return [
        calibration.scaled(o[None], temperature)[0] if isinstance(o, np.ndarray) else o
        for o in outcomes
    ]


def _source_run(uri: str, tracking_uri: str) -> str:
    """The id of the training run that logged the model at ``uri``."""
    import mlflow

    run_id = source_run(uri, mlflow.MlflowClient(tracking_uri))
    if run_id is None:
        raise ConfigError(
            "calibrated",
            f"needs model=runs:/... or models:/...: the folder {uri} does not say which run "
            "fitted its temperature",
        )
    return run_id


def _names_for(model, outcomes: list[np.ndarray | str]) -> list[str]:
    count = next((len(o) for o in outcomes if isinstance(o, np.ndarray)), 0)
    return class_names(model, count)


def _entry(path: Path, outcome: np.ndarray | str, names: list[str], top_k: int) -> dict:
    if isinstance(outcome, str):
        return {"input": str(path), "error": outcome}
    ranked = top_classes(outcome, top_k)
    predictions = [{"class": names[c], "probability": round(float(outcome[c]), 6)} for c in ranked]
    return {"input": str(path), "predictions": predictions}


def _check(cfg) -> None:
    """Required keys present, ``top_k`` and ``output`` in range; before anything slow."""
    for key, example in (
        ("model", "model=runs:/<run_id>/model, models:/<name>/<version> or a model folder"),
        ("inputs", "inputs=<image file or folder>"),
    ):
        if OmegaConf.is_missing(cfg, key) or not cfg[key]:
            raise ConfigError(key, f"is required, e.g. {example}")
    if cfg.top_k < 1:
        raise ConfigError("top_k", f"must be >= 1, got {cfg.top_k}")
    if cfg.output not in OUTPUTS:
        raise ConfigError("output", f"must be one of {', '.join(OUTPUTS)}, got {cfg.output!r}")


def _predict(argv: list[str]) -> int:
    """The command: 0 if every image was predicted, 1 if any could not be decoded."""
    if any(arg in ("-h", "--help") for arg in argv):
        print(USAGE)  # on stdout with status 0, as --help should: not cli_args' SystemExit
        return 0
    cfg = parse(argv, PredictArgs, "experiments.predict")
    _check(cfg)

    paths = list_inputs(cfg.inputs)
    quiet.import_tensorflow()  # without its start-up notes
    tracking_uri = resolve_tracking_uri(cfg.mlflow.tracking_uri)
    started = time.perf_counter()
    model = load_model(cfg.model, tracking_uri)
    clock = {"load_s": time.perf_counter() - started}
    outcomes = _probabilities(model, paths, clock)
    if cfg.calibrated:
        outcomes = _calibrated(outcomes, cfg.model, tracking_uri)
    if cfg.timing:
        n, busy = clock["images"], clock["decode_s"] + clock["predict_s"]
        print(
            f"timing: model loaded in {clock['load_s']:.2f} s; {n} images decoded in "
            f"{clock['decode_s']:.2f} s and predicted in {clock['predict_s']:.2f} s: "
            f"{n / max(busy, 1e-9):.0f} images/s after loading",
            file=sys.stderr,
        )
    names = _names_for(model, outcomes)
    for path, outcome in zip(paths, outcomes, strict=True):
        if isinstance(outcome, str):
            print(f"error: {path}: {outcome}", file=sys.stderr)
    if cfg.output == "json":
        entries = [
            _entry(path, o, names, cfg.top_k) for path, o in zip(paths, outcomes, strict=True)
        ]
        print(json.dumps(entries, indent=2))
    else:
        blocks = [
            f"{path}\n{format_top_k(o, names, cfg.top_k)}"
            for path, o in zip(paths, outcomes, strict=True)
            if isinstance(o, np.ndarray)
        ]
        if blocks:
            print("\n\n".join(blocks))
    return 1 if any(isinstance(o, str) for o in outcomes) else 0


def main(argv: list[str] | None = None) -> None:
    """``python -m experiments.predict key=value ...``; exits 0, 1 (an image failed) or 2."""
    run_command(_predict, argv)


if __name__ == "__main__":
    main()
