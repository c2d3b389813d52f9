"""Fashion-MNIST from its four IDX files, found without a download whenever possible."""

from __future__ import annotations

import logging
import os
import subprocess
from pathlib import Path

import numpy as np

from experiments.data.idx import read_idx
from experiments.data.splits import Splits, hold_out
from experiments.errors import DataError

log = logging.getLogger(__name__)

CLASS_NAMES = [
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
]
FILES = {
    "x_train": "train-images-idx3-ubyte.gz",
    "y_train": "train-labels-idx1-ubyte.gz",
    "x_test": "t10k-images-idx3-ubyte.gz",
    "y_test": "t10k-labels-idx1-ubyte.gz",
}
DEBIAN_PACKAGE = "dataset-fashion-mnist"
DEBIAN_DIR = Path("/usr/share/datasets/fashion-mnist")


def _has_files(folder: Path) -> bool:
    return all((folder / name).is_file() for name in FILES.values())


def _debian_dir() -> Path | None:
    """The folder where Debian's package put the files, asking dpkg when it is not the usual one."""
    if _has_files(DEBIAN_DIR):
        return DEBIAN_DIR
    try:
        listing = subprocess.run(
            ["dpkg", "-L", DEBIAN_PACKAGE], capture_output=True, text=True, timeout=10
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    for line in listing.splitlines():
        if line.endswith(FILES["x_train"]):
            return Path(line).parent
    return None


def _keras_cache() -> Path:
    home = Path(os.environ.get("KERAS_HOME", Path.home() / ".keras"))
    return home / "datasets" / "fashion-mnist"


def locate(root: str | None) -> tuple[Path | None, str]:
    """The folder holding the IDX files and a description of that source.

    Order: ``dataset.root``, ``$FASHION_MNIST_DIR``, Debian's package, Keras' cache.
    Returns ``(None, ...)`` when only a download is left.
    """
    if root is not None:
        folder = Path(root).expanduser()
        if not _has_files(folder):
            raise DataError(
                f"dataset.root={root} does not hold the Fashion-MNIST files "
                f"{sorted(FILES.values())}; fix the path or leave dataset.root=null"
            )
        return folder, f"dataset.root ({folder})"
    env = os.environ.get("FASHION_MNIST_DIR")
    if env:
        if not _has_files(Path(env)):
            raise DataError(f"$FASHION_MNIST_DIR={env} does not hold the Fashion-MNIST files")
        return Path(env), f"$FASHION_MNIST_DIR ({env})"
    debian = _debian_dir()
    if debian is not None:
        return debian, f"Debian package {DEBIAN_PACKAGE} ({debian})"
    if _has_files(_keras_cache()):
        return _keras_cache(), f"Keras cache ({_keras_cache()})"
    return None, "download through keras.datasets.fashion_mnist"


def _read(folder: Path) -> dict[str, np.ndarray]:
    arrays = {key: read_idx(folder / name) for key, name in FILES.items()}
    for split in ("train", "test"):
        if len(arrays[f"x_{split}"]) != len(arrays[f"y_{split}"]):
            raise DataError(f"{folder}: {split} images and labels differ in count")
    return arrays


def _download() -> dict[str, np.ndarray]:
    import keras

    try:
        (x_train, y_train), (x_test, y_test) = keras.datasets.fashion_mnist.load_data()
    except Exception as exc:  # no network, a proxy, a partial file...
        raise DataError(
            f"Fashion-MNIST was not found locally and the download failed ({exc}). "
            f"Install it with `apt-get install {DEBIAN_PACKAGE}`, or point dataset.root "
            "or $FASHION_MNIST_DIR at a folder of the four IDX .gz files"
        ) from exc
    return {"x_train": x_train, "y_train": y_train, "x_test": x_test, "y_test": y_test}


def load(cfg, seed: int) -> Splits:
    """Fashion-MNIST split into train/validation (seeded) and the untouched test set."""
    folder, source = locate(cfg.root)
    log.info("Fashion-MNIST source: %s", source)
    arrays = _read(folder) if folder is not None else _download()
    x_train, y_train, x_val, y_val = hold_out(
        arrays["x_train"], arrays["y_train"], cfg.val_split, seed
    )
    splits = Splits(
        x_train,
        y_train,
        x_val,
        y_val,
        arrays["x_test"],
        arrays["y_test"],
        class_names=list(CLASS_NAMES),
        source=source,
    )
    return _fit_shape(splits, cfg.image_size, cfg.channels)


def _fit_shape(splits: Splits, size: int, channels: int) -> Splits:
    """Add the channel axis, and resize or expand to RGB when the backbone needs it."""
    for name in ("x_train", "x_val", "x_test"):
        images = getattr(splits, name)[..., np.newaxis]
        if images.shape[1] != size:
            images = _resize(images, size)
        if channels == 3:
            images = np.repeat(images, 3, axis=-1)
        setattr(splits, name, images)
    return splits


def _resize(images: np.ndarray, size: int) -> np.ndarray:
    from PIL import Image

    out = np.empty((len(images), size, size, 1), np.uint8)
    for i, image in enumerate(images[..., 0]):
        out[i, ..., 0] = np.asarray(Image.fromarray(image).resize((size, size), Image.BILINEAR))
    return out
