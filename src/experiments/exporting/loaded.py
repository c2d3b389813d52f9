"""An exported model as ``predict`` reads it: a file run by its own runtime, described
like a logged Keras model (input signature, class names), from a path or an MLflow URI."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

from experiments.errors import ConfigError
from experiments.exporting import formats, runtimes


class ExportedModel:
    """An exported file run by its own runtime, with a description shaped like MLflow's."""

    def __init__(self, run, metadata):
        self.run, self.metadata = run, metadata

    def predict(self, batch) -> np.ndarray:
        return np.asarray(self.run(batch))


def from_path(path: Path, key: str) -> ExportedModel | None:
    """The export at ``path`` (a file or its format's folder); None for a Keras model folder."""
    if not path.exists():
        raise ConfigError(key, "no such folder, and not a runs:/ or models:/ URI")
    found = formats.find_export(path)
    return None if found is None else from_file(found, None)


def from_file(path: Path, class_names: list[str] | None):
    from mlflow.models import Model, ModelSignature
    from mlflow.types.schema import Schema, TensorSpec

    shape = runtimes.declared_shape(path)
    description = Model()
    description.signature = ModelSignature(
        inputs=Schema([TensorSpec(np.dtype("float32"), (-1, *shape))])
    )
    names = class_names or formats.read_info(path).get("class_names")
    description.metadata = {"class_names": names} if names else {}
    return ExportedModel(runtimes.runner(path), description)


def from_uri(uri: str):
    """The export behind a ``runs:/``/``models:/`` URI (the onnx flavour, or a folder an
    export run logged); None when ``uri`` is anything else (a Keras model)."""
    import mlflow
    from mlflow.models import Model

    try:
        description = Model.load(uri)
    except Exception:  # noqa: BLE001  no MLmodel: perhaps export/<format>/ of an export run
        description = None
    if description is not None and "onnx" not in description.flavors:
        return None
    if description is None and not uri.startswith("runs:/"):
        return None
    # The runtimes read the whole file when they open it: the download can go at once.
    with tempfile.TemporaryDirectory(prefix="experiments-export-") as tmp:
        try:
            folder = Path(mlflow.artifacts.download_artifacts(uri, dst_path=tmp))
        except Exception:  # noqa: BLE001  nothing there: load_logged_model says why
            return None
        if description is not None:
            found = next(folder.rglob("*.onnx"), None)
            names = (description.metadata or {}).get("class_names")
            return None if found is None else from_file(found, names)
        found = formats.find_export(folder)
        return None if found is None else from_file(found, None)
