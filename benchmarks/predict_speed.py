"""Part 5: ``python -m experiments.predict`` on a folder of 1,000 images.

A model is trained briefly through the real command line (the default backbone), 1,000
Fashion-MNIST test images are written as PNG files, and predict runs on the folder with
``timing=true``: the model's load time and the images per second after loading (decoding
and batched prediction) are read from its timing line. Median of the repeats.
"""

from __future__ import annotations

import re
import sys
import tempfile
from pathlib import Path

from common import last_run, median, run

TIMING = re.compile(
    r"model loaded in ([\d.]+) s; (\d+) images decoded in ([\d.]+) s and predicted in "
    r"([\d.]+) s: (\d+) images/s"
)


def write_images(folder: Path, count: int) -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
    from PIL import Image

    from experiments.data import fashion_mnist, idx

    root, _ = fashion_mnist.locate(None)
    pixels = idx.read_idx(root / "t10k-images-idx3-ubyte.gz")[:count]
    folder.mkdir(parents=True)
    for i, image in enumerate(pixels):
        Image.fromarray(image).save(folder / f"{i:04d}.png")


def measure(count: int = 1000, repeats: int = 3, backbone: str | None = None) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        store = work / "mlflow.db"
        extra = [f"backbone={backbone}"] if backbone else []
        run(
            [
                "-m",
                "experiments",
                *extra,
                "dataset.limit=2000",
                "trainer.epochs=1",
                "trainer.verbose=0",
                f"mlflow.tracking_uri=sqlite:///{store}",
            ],
            work,
        )
        _, trained = last_run(store)
        write_images(work / "images", count)
        rows = []
        for _ in range(repeats):
            wall, result = run(
                [
                    "-m",
                    "experiments.predict",
                    f"model=runs:/{trained.info.run_id}/model",
                    f"inputs={work / 'images'}",
                    "output=json",
                    "timing=true",
                    f"mlflow.tracking_uri=sqlite:///{store}",
                ],
                work,
            )
            found = TIMING.search(result.stderr)
            if not found:
                raise SystemExit(f"no timing line:\n{result.stderr[-2000:]}")
            load, n, decode, predict, rate = found.groups()
            rows.append(
                {
                    "load_s": float(load),
                    "images": int(n),
                    "decode_s": float(decode),
                    "predict_s": float(predict),
                    "rate": float(rate),
                    "wall_s": wall,
                }
            )
    return {
        "backbone": trained.data.params.get("backbone.name"),
        "images": rows[0]["images"],
        "load_s": median([r["load_s"] for r in rows]),
        "decode_s": median([r["decode_s"] for r in rows]),
        "predict_s": median([r["predict_s"] for r in rows]),
        "rate": median([r["rate"] for r in rows]),
        "wall_s": median([r["wall_s"] for r in rows]),
        "repeats": repeats,
    }


def section(r: dict) -> str:
    return "\n".join(
        [
            "## 5. Prediction",
            "",
            f"`python -m experiments.predict` on a folder of {r['images']} PNG files "
            f"(Fashion-MNIST test images), model `{r['backbone']}` from `runs:/`, "
            f"median of {r['repeats']} runs:",
            "",
            "| model load (s) | decoding (s) | batched prediction (s) | images/s after loading | "
            "whole command (s) |",
            "|---:|---:|---:|---:|---:|",
            f"| {r['load_s']:.2f} | {r['decode_s']:.2f} | {r['predict_s']:.2f} | {r['rate']:.0f} | "
            f"{r['wall_s']:.1f} |",
        ]
    )


if __name__ == "__main__":
    print(section(measure()))
