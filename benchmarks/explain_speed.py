"""``explain`` against ``predict`` on the same 100 images and model: the whole commands.

    python benchmarks/explain_speed.py            # the compact CNN and MobileNet (~3 min)
    python benchmarks/explain_speed.py --write    # and into RESULTS.md, this CPU's section

Two logged models, trained through the real command line: the compact CNN on Fashion-MNIST
(28 px, 2,000 images, 2 epochs) and MobileNet from scratch on ``dataset=shapes`` at 96 px
(1 epoch; random initial weights). 100 of their test images are written as PNG files;
``python -m experiments.predict`` and ``python -m experiments.explain`` then run on that
folder, alternating, three times each; the table gives each command's median wall time
(start-up, model loading and images included: what a user waits for) and the ratio.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

import numpy as np  # noqa: E402
from common import cpu_kind, last_run, machine, run  # noqa: E402
from results import write_part  # noqa: E402

ROUNDS, IMAGES = 3, 100
MODELS = {
    "compact CNN, Fashion-MNIST 28 px": ["dataset.limit=2000", "trainer.epochs=2"],
    "MobileNet (scratch), shapes 96 px": [
        "backbone=mobilenet",
        "backbone.weights=null",
        "phase=scratch",
        "dataset=shapes",
        "dataset.image_size=96",
        "dataset.per_class=60",
        "trainer.epochs=1",
    ],
}


def _images(folder: Path, overrides: list[str]) -> Path:
    """``IMAGES`` test images of the run's dataset, as PNG files."""
    from PIL import Image

    from experiments.data import registry as datasets
    from experiments.training.settings import compose

    cfg = compose(overrides)
    with contextlib.chdir(folder):  # the run's own relative data/ folder
        data = datasets.load(cfg.dataset, cfg.seed, channels=None)
    out = folder / "images"
    out.mkdir()
    for i, pixels in enumerate(np.asarray(data.x_test[np.arange(min(IMAGES, len(data.y_test)))])):
        Image.fromarray(pixels.squeeze() if pixels.shape[-1] == 1 else pixels).save(
            out / f"{i}.png"
        )
    return out


def one(label: str, overrides: list[str], folder: Path) -> str:
    store = folder / "mlflow.db"
    uri = f"sqlite:///{store}"
    run(
        ["-m", "experiments", f"mlflow.tracking_uri={uri}", "trainer.verbose=0", *overrides], folder
    )
    model = f"model=runs:/{last_run(store)[1].info.run_id}/model"
    images = _images(folder, overrides)
    common = [model, f"inputs={images}", f"mlflow.tracking_uri={uri}"]
    times: dict[str, list[float]] = {"predict": [], "explain": []}
    for index in range(ROUNDS):
        order = ("predict", "explain") if index % 2 == 0 else ("explain", "predict")
        for command in order:
            wall, _ = run(["-m", f"experiments.{command}", *common], folder)
            times[command].append(wall)
    p, e = (statistics.median(times[c]) for c in ("predict", "explain"))
    spread = {c: f"{min(t):.2f}-{max(t):.2f}" for c, t in times.items()}
    return (
        f"| {label} | {p:.2f} ({spread['predict']}) | {e:.2f} ({spread['explain']}) "
        f"| {e / p:.2f}x |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--write", action="store_true", help="into RESULTS.md")
    args = parser.parse_args()
    lines = [
        machine(),
        "",
        f"| model | predict, {IMAGES} images: s, median (range) | explain: s | explain / predict |",
        "|---|---:|---:|---:|",
    ]
    print("\n".join(lines), flush=True)
    for label, overrides in MODELS.items():
        with tempfile.TemporaryDirectory() as tmp:
            line = one(label, overrides, Path(tmp))
        print(line, flush=True)
        lines.append(line)
    if args.write:
        text = "### explain against predict, whole commands\n\n" + "\n".join(lines)
        write_part(cpu_kind(), "explain", "python benchmarks/explain_speed.py", text)


if __name__ == "__main__":
    main()
