"""``python -m experiments.explain model=... inputs=...``: where a model looks, image by image.

For each image: the Grad-CAM map (``explaining.gradcam``) of the predicted class, or of
``class=``, drawn over the image into ``output/<image name>.gradcam.png``, and one JSON line
on stdout (the top classes, the class explained, the layer mapped, the picture's path).
A file that cannot be decoded gets one ``error:`` line, as in ``predict``; the rest go on.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from omegaconf import OmegaConf

from experiments.commands import quiet
from experiments.commands.cli_args import parse, run_command
from experiments.commands.predict import class_names, input_shape, list_inputs, load_model
from experiments.data import stream
from experiments.errors import ConfigError
from experiments.explaining import gradcam, overlay
from experiments.reporting.ranking import top_classes
from experiments.tracking.store import resolve_tracking_uri

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")

USAGE = """\
usage: python -m experiments.explain model=<model> inputs=<image file or folder> [key=value ...]

Where the model looks: a Grad-CAM map per image, drawn over it, and a JSON line per image.

keys (default):
  model (required)           runs:/<run_id>/model, models:/<name>@<alias>, or a model folder
  inputs (required)          an image file, or a folder: its image files, recursively, sorted
  class=null                 the class to explain (a name); null = each image's predicted class
  layer=null                 the layer to map, inside the base; null = its last spatial map
  output=explained           the folder the overlays go to: <image path>.gradcam.png
  top_k=3                    classes listed per image
  scale=4                    the overlay's size, in pixels per image pixel
  mlflow.tracking_uri=null   store of runs:/ and models:/ URIs; null = $MLFLOW_TRACKING_URI

examples:
  python -m experiments.explain model=runs:/<run_id>/model inputs=samples/
  python -m experiments.explain model=models:/shapes@champion inputs=cat.png class=circle

exit status: 0 every image explained, 1 some image could not be decoded, 2 bad input"""
BATCH = 32


@dataclass
class MlflowArgs:
    tracking_uri: str | None = None


@dataclass
class ExplainArgs:
    model: str
    inputs: str
    layer: str | None = None
    output: str = "explained"
    top_k: int = 3
    scale: int = 4
    mlflow: MlflowArgs = field(default_factory=MlflowArgs)


def _explain(argv: list[str]) -> int:
    if any(arg in ("-h", "--help") for arg in argv):
        print(USAGE)
        return 0
    # ``class`` is a Python keyword, not a dataclass field: taken out before parsing.
    wanted = [a.split("=", 1)[1] for a in argv if a.startswith("class=")]
    cfg = parse([a for a in argv if not a.startswith("class=")], ExplainArgs, "experiments.explain")
    for key in ("model", "inputs"):
        if OmegaConf.is_missing(cfg, key) or not cfg[key]:
            raise ConfigError(key, f"is required, e.g. {key}=...")
    paths = list_inputs(cfg.inputs)
    quiet.import_tensorflow()
    model = load_model(cfg.model, resolve_tracking_uri(cfg.mlflow.tracking_uri))
    if not hasattr(model, "keras_model"):
        raise ConfigError("model", "Grad-CAM needs the Keras model, not an exported file")
    size, channels = input_shape(model, cfg.model)
    names = class_names(model, int(model.keras_model.output_shape[-1]))
    target = _class_index(wanted[-1] if wanted else None, names, cfg.model)
    explain = gradcam.explainer(model.keras_model, cfg.layer)
    output = Path(cfg.output)
    output.mkdir(parents=True, exist_ok=True)
    failed = 0
    done = 0
    for pixels, reasons in stream.decoded_files(paths, size, channels, BATCH):
        batch = paths[done : done + len(pixels)]
        done += len(pixels)
        good = [i for i, reason in enumerate(reasons) if not reason]
        for i, reason in enumerate(reasons):
            if reason:
                failed += 1
                print(f"error: {batch[i]}: {reason.decode()}", file=sys.stderr)
        if not good:
            continue
        images = pixels[good].astype(np.float32)
        classes = None if target is None else np.full(len(good), target)
        cams, chosen, probs = explain.maps(images, classes)
        for j, i in enumerate(good):
            picture = output / _relative(batch[i], cfg.inputs).with_suffix(".gradcam.png")
            picture.parent.mkdir(parents=True, exist_ok=True)
            overlay.overlay(images[j], cams[j], cfg.scale).save(picture)
            top = [
                {"class": names[c], "probability": round(float(probs[j][c]), 6)}
                for c in top_classes(probs[j], cfg.top_k)
            ]
            line = {
                "input": str(batch[i]),
                "predictions": top,
                "explained": names[int(chosen[j])],
                "layer": explain.layer,
                "overlay": str(picture),
            }
            print(json.dumps(line))
    return 1 if failed else 0


def _relative(path: Path, inputs: str) -> Path:
    """Where an image sits under ``inputs``: two files of one name in two folders keep
    their own overlays."""
    root = Path(inputs)
    return path.relative_to(root) if root.is_dir() else Path(path.name)


def _class_index(name: str | None, names: list[str], uri: str) -> int | None:
    if name is None:
        return None
    if name not in names:
        raise ConfigError("class", f"{name!r} is not a class of {uri}; its classes: {names}")
    return names.index(name)


def main(argv: list[str] | None = None) -> None:
    """``python -m experiments.explain key=value ...``; exits 0, 1 (an image failed) or 2."""
    run_command(_explain, argv)


if __name__ == "__main__":
    main()
