"""Each export format's own runtime: TensorFlow for a SavedModel, the LiteRT interpreter,
ONNX Runtime. A runner maps a float32 batch of raw images to class probabilities."""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from pathlib import Path

import numpy as np

from experiments.errors import ConfigError
from experiments.exporting import formats


def runner(path: Path) -> Callable[[np.ndarray], np.ndarray]:
    """A function from a float32 batch of raw images to class probabilities, run by the
    format's own runtime: TensorFlow for a SavedModel, LiteRT, ONNX Runtime."""
    fmt = formats.format_of(path)
    if fmt is None:
        raise ConfigError("model", f"{path} is not a .onnx, .tflite or SavedModel folder")
    missing = [m for m in fmt.needs if m != "tf2onnx" and importlib.util.find_spec(m) is None]
    if missing:
        raise ConfigError("model", f"reading {path} needs {', '.join(missing)}: {formats.EXTRA}")
    return {"tf_saved_model": _saved_model, "litert": _litert, "onnx": _onnx}[fmt.name](path)


def _saved_model(path: Path):
    import tensorflow as tf

    serve = tf.saved_model.load(str(path)).signatures[formats.SIGNATURE]

    def run(batch: np.ndarray) -> np.ndarray:
        outputs = serve(tf.constant(batch, tf.float32))
        return np.asarray(next(iter(outputs.values())))

    return run


def _litert(path: Path):
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(path))
    source, target = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    shape = [None]

    def run(batch: np.ndarray) -> np.ndarray:
        if shape[0] != batch.shape:  # the batch size is part of a LiteRT graph's shape
            interpreter.resize_tensor_input(source["index"], batch.shape)
            interpreter.allocate_tensors()
            shape[0] = batch.shape
        interpreter.set_tensor(source["index"], batch.astype(np.float32))
        interpreter.invoke()
        return np.array(interpreter.get_tensor(target["index"]))

    return run


def _onnx(path: Path):
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name

    def run(batch: np.ndarray) -> np.ndarray:
        return session.run(None, {name: batch.astype(np.float32)})[0]

    return run


def declared_shape(path: Path) -> tuple[int, ...]:
    """The image shape (size, size, channels) an exported file declares for its input."""
    info = formats.read_info(path)
    if info.get("input_shape"):
        return tuple(info["input_shape"])
    fmt = formats.format_of(path)
    if fmt.name == "onnx":
        import onnxruntime

        session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        shape = session.get_inputs()[0].shape[1:]
    elif fmt.name == "litert":
        from ai_edge_litert.interpreter import Interpreter

        shape = Interpreter(model_path=str(path)).get_input_details()[0]["shape_signature"][1:]
    else:
        import tensorflow as tf

        serve = tf.saved_model.load(str(path)).signatures[formats.SIGNATURE]
        spec = next(iter(serve.structured_input_signature[1].values()))
        shape = spec.shape[1:]
    return tuple(int(d) if isinstance(d, (int, np.integer)) else -1 for d in shape)
