"""The README's picture: the configurations table ``compare`` printed, over its validation curves.

Run in the folder where the tutorial's commands ran (docs/tutorial.md), after
``python -m experiments.compare ... > compare.log``:

    python docs/comparison_picture.py compare.log comparison/val_accuracy_curves.png \
        docs/_static/comparison.png
"""

from __future__ import annotations

import sys


def configurations_table(log: str) -> str:
    """The aggregated table and the lines under it, without the legend's long overrides."""
    lines = log.splitlines()
    start = next(i for i, line in enumerate(lines) if "configuration(s)" in line)
    end = next(i for i, line in enumerate(lines) if line.startswith("legend"))
    return "\n".join(lines[start:end])


def main(log_path: str, curves_path: str, out_path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from PIL import Image

    table = configurations_table(open(log_path).read())
    curves = Image.open(curves_path).convert("RGB")
    figure = plt.figure(figsize=(11, 6.0), dpi=90)
    top = figure.add_axes((0, 0.76, 1, 0.24))
    top.axis("off")
    top.text(0.01, 0.95, table, family="monospace", fontsize=6.4, va="top")
    bottom = figure.add_axes((0.1, 0, 0.8, 0.78))
    bottom.imshow(curves)
    bottom.axis("off")
    figure.savefig(out_path)
    Image.open(out_path).convert("RGB").quantize(colors=64).save(out_path, optimize=True)


if __name__ == "__main__":
    main(*sys.argv[1:4])
