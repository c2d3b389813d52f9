"""Which formats pass the export gate, for every backbone of the zoo.

    python benchmarks/export_zoo.py                  # every backbone (about 40 min, 2 cores)
    python benchmarks/export_zoo.py mobilenet vgg16  # some
    python benchmarks/export_zoo.py --write          # and into RESULTS.md, this CPU's section
    python benchmarks/export_zoo.py --noise resnet152   # Keras against itself, no export

Each backbone is built as a run builds it (``models.build``: preprocessing, base, head) at
its minimum input size with random weights (ImageNet weights cannot be had here), 3
classes, then exported by ``exporting.formats`` to SavedModel, LiteRT and ONNX, each file
run by its own runtime on 64 fixed random images and compared with the Keras model by
``exporting.parity`` (float gate: >= 99.9 % top-1 agreement, max |dp| <= 1e-3).

Random weights with the batch-normalisation statistics Keras starts with (mean 0, variance
1) saturate a deep network: MobileNet answered the same probabilities for every image,
which no comparison can fault. So each normalisation layer first takes the statistics of
these images (one forward pass in training mode, momentum 0), as a trained network's
would be; the table gives the spread of the probabilities the check compared.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

import numpy as np  # noqa: E402
from common import cpu_kind, machine  # noqa: E402
from results import write_part  # noqa: E402

from experiments import models  # noqa: E402
from experiments.exporting import formats, parity, runtimes, source  # noqa: E402
from experiments.training.settings import compose  # noqa: E402

IMAGES, CLASSES = 64, 3
MEMORY = 18 * 2**30  # each backbone's process: tf2onnx held 23.6 GB for ConvNeXt Large
TIMEOUT = 900  # seconds per backbone


def prepared(name: str):
    """Backbone ``name`` as the table checks it, its inference model and the 64 images."""
    import keras

    row = models.spec(name)
    size, channels = row.min_size, row.channels or 1
    cfg = compose(
        [
            f"backbone={name}",
            "backbone.weights=null",
            "dataset=shapes",
            f"dataset.image_size={size}",
        ]
    )
    keras.utils.set_random_seed(0)
    built = models.build(cfg, (size, size, channels), CLASSES)
    images = np.random.default_rng(0).uniform(0, 255, (IMAGES, size, size, channels))
    images = images.astype(np.float32)
    _normalise_on(built, images)
    return source.inference_model(built), images


def one(name: str, report=lambda verdicts: None) -> dict[str, str]:
    """Each format's verdict for backbone ``name``: ``pass``, or why not (short)."""
    import keras

    model, images = prepared(name)
    reference = np.asarray(model.predict_on_batch(images))
    verdicts = {"spread": f"{reference.std(axis=0).mean():.0e}"}
    report(verdicts)
    with tempfile.TemporaryDirectory() as tmp:
        for fmt in formats.FORMATS.values():
            try:
                path = formats.export(model, fmt, Path(tmp) / fmt.name, "none", images[:4])
                probs = runtimes.runner(path)(images)
            except Exception as exc:  # noqa: BLE001  the table says which and why
                verdicts[fmt.name] = f"fails: {str(exc).strip().splitlines()[0][:160]}"
                report(verdicts)
                continue
            check = parity.compare(reference, probs, None)
            failure = parity.verdict(check, False, 1.0)
            verdicts[fmt.name] = "pass" if failure is None else f"gate: {failure}"
            verdicts[f"{fmt.name}_dp"] = f"{check.max_dp:.0e}"
            report(verdicts)
    keras.backend.clear_session()
    return verdicts


def noise(name: str) -> float:
    """The largest difference in probability between two ways Keras itself runs the same
    model on the same images: its graph (``predict_on_batch``, the gate's reference) and an
    eager call. Where it nears the gate's 1e-3, so will any exported file."""
    model, images = prepared(name)
    graph = np.asarray(model.predict_on_batch(images))
    return float(np.abs(graph - np.asarray(model(images, training=False))).max())


def _normalise_on(model, images: np.ndarray) -> None:
    """Every BatchNormalization layer's moving statistics set to those of ``images``."""
    import keras

    def leaves(layer):
        for inner in getattr(layer, "layers", []):
            yield inner
            yield from leaves(inner)

    norms = [la for la in leaves(model) if isinstance(la, keras.layers.BatchNormalization)]
    for layer in norms:
        layer.trainable, layer.momentum = True, 0.0
    model(images, training=True)
    for layer in norms:
        layer.momentum = 0.99


def isolated(name: str) -> dict[str, str]:
    """``one(name)`` in a process of its own, its memory capped: a converter that runs out
    of memory fails that backbone, not the machine nor the table."""

    def cap():
        resource.setrlimit(resource.RLIMIT_AS, (MEMORY, MEMORY))

    try:
        done = subprocess.run(
            [sys.executable, __file__, "--one", name],
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
            preexec_fn=cap,
        )
    except subprocess.TimeoutExpired:
        return {f: f"not done in {TIMEOUT} s" for f in ("tf_saved_model", "litert", "onnx")} | {
            "spread": "-"
        }
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    verdicts = json.loads(lines[-1]) if lines else {}  # the formats done before any crash
    if done.returncode == 0 and lines:
        return verdicts
    memory = "MemoryError" in done.stderr or "bad_alloc" in done.stderr or done.returncode < 0
    why = f"out of its {MEMORY // 2**30} GiB" if memory else done.stderr.strip()[-120:]
    missing = {f: f"fails: {why}" for f in formats.FORMATS if f not in verdicts}
    return {"spread": "-", **verdicts, **missing}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("names", nargs="*", help="backbones (default: all)")
    parser.add_argument("--write", action="store_true", help="into RESULTS.md")
    parser.add_argument("--noise", action="store_true", help="Keras graph against eager only")
    parser.add_argument("--one", help=argparse.SUPPRESS)  # a child: one backbone, as JSON
    args = parser.parse_args()
    if args.one:
        one(args.one, lambda verdicts: print(json.dumps(verdicts), flush=True))
        return
    names = args.names or models.names()
    if args.noise:
        print(machine(), flush=True)
        for name in names:
            print(f"{name}: max |dp| Keras graph against eager {noise(name):.1e}", flush=True)
        return
    lines = [
        machine(),
        "",
        "| backbone | size | SavedModel | LiteRT | ONNX | max abs dp (SM / LiteRT / ONNX) "
        "| spread of p | s |",
        "|---|---:|---|---|---|---|---:|---:|",
    ]
    print("\n".join(lines), flush=True)
    for name in names:
        begun = time.perf_counter()
        v = isolated(name)
        v = {key: value.replace("|", "\\|") for key, value in v.items()}  # a table cell
        dps = " / ".join(v.get(f"{f}_dp", "-") for f in formats.FORMATS)
        line = (
            f"| {name} | {models.spec(name).min_size} | {v['tf_saved_model']} | {v['litert']} "
            f"| {v['onnx']} | {dps} | {v['spread']} | {time.perf_counter() - begun:.0f} |"
        )
        print(line, flush=True)
        lines.append(line)
    if args.write:
        command = "python benchmarks/export_zoo.py" + (
            " " + " ".join(args.names) if args.names else ""
        )
        write_part(
            cpu_kind(),
            "export_zoo",
            command,
            "### Export gate, every backbone\n\n" + "\n".join(lines),
        )


if __name__ == "__main__":
    main()
