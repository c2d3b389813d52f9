"""The export formats: how Keras writes each one, and the runtime that reads it back.

Keras' own ``model.export(format=...)`` writes every file; nothing here converts a graph.
Each format's runtime is an optional dependency (``pip install 'experiments[export]'``),
checked before anything is exported, so a missing one is named at once.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from experiments.errors import ConfigError
from experiments.exporting import onnx_ready

EXTRA = "pip install 'experiments[export]'"
QUANTIZE = ("none", "float16", "dynamic_int8", "int8")
SIGNATURE = "serving_default"
INFO = "model.json"  # beside each exported file: class names and input shape, for predict


@dataclass(frozen=True)
class Format:
    name: str
    file: str  # what Keras writes, in the format's folder
    needs: tuple[str, ...]  # modules the export and its runtime import


FORMATS = {
    "tf_saved_model": Format("tf_saved_model", "saved_model", ()),  # read by TensorFlow itself
    "litert": Format("litert", "model.tflite", ("ai_edge_litert",)),
    "onnx": Format("onnx", "model.onnx", ("tf2onnx", "onnx", "onnxruntime")),
}


def check(names: list[str], quantize: str) -> list[Format]:
    """The formats asked for, their runtimes installed; else one error naming the fix."""
    if not names:
        raise ConfigError("formats", f"is empty; choose among {', '.join(FORMATS)}")
    unknown = [name for name in names if name not in FORMATS]
    if unknown:
        raise ConfigError("formats", f"unknown format {unknown[0]!r}; known: {', '.join(FORMATS)}")
    if quantize not in QUANTIZE:
        raise ConfigError(
            "litert.quantize", f"must be one of {', '.join(QUANTIZE)}, got {quantize!r}"
        )
    chosen = [FORMATS[name] for name in dict.fromkeys(names)]
    for fmt in chosen:
        missing = [m for m in fmt.needs if importlib.util.find_spec(m) is None]
        if missing:
            raise ConfigError(
                "formats",
                f"{fmt.name} needs {', '.join(missing)}, which is not installed: {EXTRA}",
            )
    return chosen


def is_quantised(fmt: Format, quantize: str) -> bool:
    return fmt.name == "litert" and quantize != "none"


class ConversionRefused(Exception):
    """A converter left ops it cannot translate; the message names them and their layers."""


# tf2onnx logs each op it cannot translate, then writes a file no runtime can load.
_UNSUPPORTED = re.compile(r"Tensorflow op \[(?P<node>[^\]]+): (?P<op>\w+)\] is not supported")


def export(model, fmt: Format, folder: Path, quantize: str, sample: np.ndarray) -> Path:
    """Write ``model`` as ``fmt`` into ``folder``; return the file (or SavedModel folder).

    ``sample``: training images, the representative data of full-integer quantisation.
    Raises ``ConversionRefused`` naming the ops (and layers) a converter could not translate.
    """
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / fmt.file
    if fmt.name == "onnx":
        _onnx_in_its_own_process(onnx_ready.rewritten(model, sample), path)
    else:
        kwargs = _litert_options(quantize, sample) if fmt.name == "litert" else {}
        model.export(str(path), format=fmt.name, verbose=False, **kwargs)
    return path


def _refused(fmt: Format, messages: list[str]) -> None:
    refused = {}
    for found in (_UNSUPPORTED.search(message) for message in messages):
        if found:
            refused.setdefault(found["op"], _layer_of(found["node"]))
    if refused:
        ops = ", ".join(f"{op} (layer {layer})" for op, layer in refused.items())
        raise ConversionRefused(f"{fmt.name} has no equivalent for the TensorFlow op(s) {ops}")


def _extra_onnx_inputs(path: Path) -> list[str]:
    """Graph inputs besides the image: constants left unfrozen, which no caller can feed."""
    import onnx

    graph = onnx.load(str(path), load_external_data=False).graph
    constants = {tensor.name for tensor in graph.initializer}
    return [i.name for i in graph.input if i.name not in constants][1:]


def _onnx_in_its_own_process(model, path: Path) -> None:
    """The model written as a SavedModel, then converted by tf2onnx's SavedModel route in a
    Python of its own.

    Not Keras' ``export(format="onnx")`` here: tf2onnx, converting a Keras function in this
    process, held 23.6 GB for ConvNeXt Large and was killed for memory on ConvNeXt XLarge,
    EfficientNetB7 and EfficientNetV2-M and -L, taking the whole export with it (2-core AMD
    EPYC, 18 GiB per process). From a SavedModel, in its own process, EfficientNetV2-M took
    9.8 GB, and a conversion the system kills fails this format alone. The SavedModel also
    holds frozen the constants tf2onnx leaves as extra graph inputs when it converts a Keras
    function (EfficientNet's normalisation).
    """
    with tempfile.TemporaryDirectory() as tmp:
        saved = Path(tmp) / "saved_model"
        model.export(str(saved), format="tf_saved_model", verbose=False)
        code, stderr = _tf2onnx(saved, path)
    _refused(FORMATS["onnx"], stderr.splitlines())
    if code < 0:
        raise ConversionRefused(
            f"onnx: tf2onnx was stopped by {signal.Signals(-code).name}"
            + (" (out of memory?)" if -code == signal.SIGKILL else "")
        )
    if code != 0 or _extra_onnx_inputs(path):
        why = stderr.strip().splitlines()[-1:] or ["inputs besides the image remain"]
        raise ConversionRefused(f"onnx: tf2onnx could not convert the graph: {why[0][:200]}")


def _tf2onnx(saved: Path, path: Path) -> tuple[int, str]:
    """tf2onnx's command line on the SavedModel ``saved``: its exit code and its log."""
    done = subprocess.run(
        [sys.executable, "-m", "tf2onnx.convert", "--saved-model", str(saved)]
        + ["--output", str(path), "--signature_def", SIGNATURE],
        capture_output=True,
        text=True,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
    )
    return done.returncode, done.stderr


def _layer_of(node: str) -> str:
    """The Keras layer in a graph node's name: its last scope with Keras' ``_<n>`` suffix."""
    scopes = node.split("/")[:-1]
    keras_scopes = [s for s in scopes if re.fullmatch(r".+_\d+", s)]
    return re.sub(r"_\d+$", "", keras_scopes[-1]) if keras_scopes else node


def _litert_options(quantize: str, sample: np.ndarray) -> dict:
    """The TFLite converter settings of ``litert.quantize`` (Keras passes them through)."""
    import tensorflow as tf

    if quantize == "none":
        return {}
    options: dict = {"optimizations": [tf.lite.Optimize.DEFAULT]}
    if quantize == "float16":
        options["target_spec"] = {"supported_types": [tf.float16]}
    elif quantize == "int8":

        def representative():
            for image in sample:
                yield [image[None].astype(np.float32)]

        options["representative_dataset"] = representative
    return options


def write_info(folder: Path, class_names: list[str], input_shape: tuple) -> None:
    info = {"class_names": list(class_names), "input_shape": [int(d) for d in input_shape]}
    (folder / INFO).write_text(json.dumps(info, indent=1) + "\n")


def read_info(path: Path) -> dict:
    """The ``model.json`` beside an exported file or in a SavedModel folder ({} if none)."""
    for candidate in (path / INFO, path.parent / INFO):
        if candidate.is_file():
            return json.loads(candidate.read_text())
    return {}


def format_of(path: Path) -> Format | None:
    """The format of an exported file or folder, from its name; None if not an export."""
    if path.suffix == ".onnx" and path.is_file():
        return FORMATS["onnx"]
    if path.suffix == ".tflite" and path.is_file():
        return FORMATS["litert"]
    if path.is_dir() and (path / "saved_model.pb").is_file():
        return FORMATS["tf_saved_model"]
    return None


def find_export(folder: Path) -> Path | None:
    """The exported file in ``folder`` (one format's folder, as the export run logs it)."""
    if format_of(folder):
        return folder
    for fmt in FORMATS.values():
        if format_of(folder / fmt.file):
            return folder / fmt.file
    return None


def size_mb(path: Path) -> float:
    """Bytes on disk of the file, or of every file of a SavedModel folder, in MB (10^6)."""
    if path.is_file():
        return path.stat().st_size / 1e6
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / 1e6
