"""Image folders decoded once into a cache on disk, streamed from it, and shared by runs."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from omegaconf import OmegaConf
from PIL import Image

from experiments.data import disk_array, image_folder, stream
from experiments.data import registry as datasets
from experiments.errors import ConfigError
from experiments.training.settings import compose


def cfg(root, cache=True, **overrides):
    base = {
        "root": str(root),
        "limit": None,
        "val_split": 0.2,
        "test_split": 0.2,
        "image_size": 8,
        "channels": 3,
        "cache": cache,
        "cache_dir": str(root.parent / "cache"),
    }
    return OmegaConf.create({**base, **overrides})


def make_folder(root, counts, size=(12, 10)):
    """Class k's image i has red 40 * k and green i: every image distinct and recognisable."""
    for k, (name, n) in enumerate(counts.items()):
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            Image.new("RGB", size, (40 * k, i, 7)).save(root / name / f"{i:04d}.png")
    return root


def cache_folders(root):
    return sorted((root.parent / "cache" / "images").glob("*/manifest.json"))


def test_cached_splits_equal_the_in_memory_ones(tmp_path):
    root = make_folder(tmp_path / "pets", {"cat": 20, "dog": 13, "emu": 30})
    in_memory = image_folder.load(cfg(root, cache=False), seed=4)
    cached = image_folder.load(cfg(root), seed=4)
    assert cached.cache_key and in_memory.cache_key is None
    for part in ("train", "val", "test"):
        x_memory, x_cached = getattr(in_memory, f"x_{part}"), getattr(cached, f"x_{part}")
        assert isinstance(x_memory, np.ndarray) and isinstance(x_cached, disk_array.DiskArray)
        assert x_cached.shape == x_memory.shape and x_cached.dtype == np.uint8
        np.testing.assert_array_equal(np.asarray(x_cached), x_memory)
        np.testing.assert_array_equal(getattr(cached, f"y_{part}"), getattr(in_memory, f"y_{part}"))


def test_a_second_load_opens_the_cache_without_decoding(tmp_path, caplog):
    root = make_folder(tmp_path / "pets", {"cat": 6, "dog": 6})
    with caplog.at_level(logging.INFO):
        first = image_folder.load(cfg(root), seed=0)
    assert "Decoding 12 images into the cache" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.INFO):
        again = image_folder.load(cfg(root), seed=0)
    assert "Decoding" not in caplog.text and "12 images, opened" in caplog.text
    assert again.cache_key == first.cache_key
    np.testing.assert_array_equal(np.asarray(again.x_train), np.asarray(first.x_train))
    assert len(cache_folders(root)) == 1


def test_a_changed_file_rebuilds_the_cache_and_removes_the_old_one(tmp_path):
    root = make_folder(tmp_path / "pets", {"cat": 6, "dog": 6})
    first = image_folder.load(cfg(root, val_split=0.01, test_split=0.01), seed=0)
    changed = root / "dog" / "0000.png"
    Image.new("RGB", (12, 10), (250, 250, 250)).save(changed)
    os.utime(changed, ns=(1, 1))  # a new modification time, whatever the clock's resolution
    again = image_folder.load(cfg(root, val_split=0.01, test_split=0.01), seed=0)
    assert again.cache_key != first.cache_key
    everything = np.concatenate([np.asarray(again.x_train), np.asarray(again.x_test)])
    assert (everything[:, 0, 0, 0] == 250).sum() == 1  # the new pixels, read from the new cache
    assert len(cache_folders(root)) == 1  # the old cache was removed
    # Another image size is another cache, kept beside the first.
    image_folder.load(cfg(root, image_size=6), seed=0)
    assert len(cache_folders(root)) == 2


def test_other_settings_and_files_change_the_key(tmp_path):
    root = make_folder(tmp_path / "pets", {"cat": 4, "dog": 4})
    keys = {image_folder.load(cfg(root), seed=0).cache_key}
    keys.add(image_folder.load(cfg(root, channels=1), seed=0).cache_key)
    keys.add(image_folder.load(cfg(root, image_size=9), seed=0).cache_key)
    make_folder(root, {"cat": 5})  # one more file
    keys.add(image_folder.load(cfg(root), seed=0).cache_key)
    assert len(keys) == 4
    assert image_folder.load(cfg(root), seed=9).cache_key in keys  # the seed only splits


def test_a_damaged_file_is_skipped_and_counted_on_every_run(tmp_path, caplog):
    root = make_folder(tmp_path / "pets", {"cat": 5, "dog": 5})
    (root / "cat" / "broken.jpg").write_bytes(b"\xff\xd8\xff not a jpeg")
    (root / "dog" / "empty.png").write_bytes(b"")
    for attempt in ("built", "opened"):
        caplog.clear()
        with caplog.at_level(logging.INFO):
            splits = image_folder.load(cfg(root), seed=0)
        assert splits.skipped == 2, attempt
        assert len(splits.y_train) + len(splits.y_val) + len(splits.y_test) == 10
        assert (
            "Skipping" in caplog.text and "broken.jpg" in caplog.text and "empty.png" in caplog.text
        )
        pixels = np.concatenate([np.asarray(splits.x_train), np.asarray(splits.x_test)])
        assert (pixels[:, 0, 0, 2] == 7).all()  # no zero row of a skipped file slipped in


def test_hidden_and_archive_metadata_folders_are_not_cached_classes(tmp_path):
    root = make_folder(tmp_path / "pets", {"cat": 5, "dog": 5})
    make_folder(root / "__MACOSX", {"cat": 3})
    make_folder(root / ".thumbnails", {"x": 3})
    splits = image_folder.load(cfg(root), seed=0)
    assert splits.class_names == ["cat", "dog"]
    assert len(splits.y_train) + len(splits.y_val) + len(splits.y_test) == 10


def test_the_pre_split_layout_is_cached_too(tmp_path):
    root = tmp_path / "split"
    for split, n in [("train", 8), ("test", 3)]:
        make_folder(root / split, {"no": n, "yes": n})
    cached = image_folder.load(cfg(root), seed=2)
    in_memory = image_folder.load(cfg(root, cache=False), seed=2)
    for part in ("train", "val", "test"):
        np.testing.assert_array_equal(
            np.asarray(getattr(cached, f"x_{part}")), getattr(in_memory, f"x_{part}")
        )


def test_the_stream_gives_the_in_memory_images_and_labels(tmp_path):
    root = make_folder(tmp_path / "pets", {"cat": 20, "dog": 13, "emu": 30})
    cached = image_folder.load(cfg(root), seed=4)
    in_memory = image_folder.load(cfg(root, cache=False), seed=4)
    for part in ("val", "test"):  # in order
        batches = list(
            stream.evaluation(getattr(cached, f"x_{part}"), getattr(cached, f"y_{part}"), 5)
        )
        x = np.concatenate([b[0].numpy() for b in batches])
        y = np.concatenate([b[1].numpy() for b in batches])
        np.testing.assert_array_equal(x, getattr(in_memory, f"x_{part}"))
        np.testing.assert_array_equal(y, getattr(in_memory, f"y_{part}"))
    # Training: the same seeded order of the same pairs, from disk as from memory.
    from_disk = list(stream.training(cached.x_train, cached.y_train, 7, seed=3))
    from_memory = list(stream.training(in_memory.x_train, in_memory.y_train, 7, seed=3))
    assert len(from_disk) == len(from_memory) == stream.steps(len(in_memory.y_train), 7)
    for (xd, yd), (xm, ym) in zip(from_disk, from_memory, strict=True):
        np.testing.assert_array_equal(xd.numpy(), xm.numpy())
        np.testing.assert_array_equal(yd.numpy(), ym.numpy())


def test_limit_and_classes_cut_the_cached_splits_as_the_in_memory_ones(tmp_path):
    root = make_folder(tmp_path / "pets", {"cat": 20, "dog": 20, "emu": 20})
    loaded = {}
    for cache in (True, False):
        dataset = compose(
            [
                "dataset=image_folder",
                f"dataset.root={root}",
                "dataset.image_size=8",
                f"dataset.cache={cache}",
                f"dataset.cache_dir={tmp_path / 'cache'}",
                "dataset.limit=9",
                "dataset.classes=[emu,cat]",
            ]
        ).dataset
        loaded[cache] = datasets.load(dataset, seed=5)
    assert loaded[True].class_names == loaded[False].class_names == ["emu", "cat"]
    for part in ("train", "val", "test"):
        np.testing.assert_array_equal(
            np.asarray(getattr(loaded[True], f"x_{part}")), getattr(loaded[False], f"x_{part}")
        )
        np.testing.assert_array_equal(
            getattr(loaded[True], f"y_{part}"), getattr(loaded[False], f"y_{part}")
        )
    assert len(loaded[True].y_train) == 9


BUILD = textwrap.dedent(
    """
    import logging, sys
    import numpy as np
    from omegaconf import OmegaConf
    from experiments.data import image_folder

    logging.basicConfig(level=logging.INFO, stream=sys.stdout, format="%(message)s")
    cfg = OmegaConf.create(dict(root=sys.argv[1], limit=None, val_split=0.2, test_split=0.2,
                                image_size=32, channels=3, cache=True, cache_dir=sys.argv[2]))
    splits = image_folder.load(cfg, seed=0)
    print("SUM", int(np.asarray(splits.x_train, np.int64).sum()), splits.cache_key)
    """
)


def test_two_processes_building_the_same_cache_at_once_build_it_once(tmp_path):
    root = make_folder(tmp_path / "pets", {"cat": 300, "dog": 300}, size=(160, 120))
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    command = [sys.executable, "-c", BUILD, str(root), str(tmp_path / "cache")]
    processes = [
        subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env
        )
        for _ in range(2)
    ]
    outputs = [process.communicate(timeout=300)[0] for process in processes]
    assert [process.returncode for process in processes] == [0, 0], outputs
    builds = [output.count("Decoded 600 images") for output in outputs]
    assert sorted(builds) == [0, 1], outputs  # one decoded; the other waited or found it built
    waited = next(output for output, built in zip(outputs, builds, strict=True) if not built)
    assert "opened" in waited
    sums = {line for output in outputs for line in output.splitlines() if line.startswith("SUM")}
    assert len(sums) == 1  # the same pixels and key in both
    home = tmp_path / "cache" / "images"
    assert len(list(home.glob("*/manifest.json"))) == 1
    assert not list(home.glob(".*building*"))  # nothing half-written left behind


def test_an_unwritable_cache_folder_names_the_key(tmp_path):
    root = make_folder(tmp_path / "pets", {"cat": 3, "dog": 3})
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(ConfigError, match="^dataset.cache_dir: cannot write"):
        image_folder.load(cfg(root, cache_dir=str(blocker / "cache")), seed=0)


def test_the_cache_keys_are_refused_for_fashion_mnist():
    with pytest.raises(ConfigError, match="dataset.cache: dataset=fashion_mnist does not use it"):
        from experiments.training.settings import validate

        validate(compose(["dataset=fashion_mnist", "dataset.cache=false"]))


def test_disk_array_views(tmp_path):
    path = tmp_path / "rows.npy"
    values = np.arange(5 * 2 * 3, dtype=np.float32).reshape(5, 2, 3)
    offset = disk_array.create(path, np.float32, values.shape)
    disk_array.write_rows(path, offset, np.array([4, 0, 2, 1, 3]), values[[4, 0, 2, 1, 3]])
    whole = disk_array.DiskArray(path)
    np.testing.assert_array_equal(np.asarray(whole), values)
    np.testing.assert_array_equal(np.load(path), values)  # a plain .npy file
    view = whole[np.array([3, 1])]
    assert view.shape == (2, 2, 3) and len(view) == 2 and view.nbytes == values[:2].nbytes
    np.testing.assert_array_equal(np.asarray(view), values[[3, 1]])
    np.testing.assert_array_equal(view[1], values[1])  # an integer gives the row itself
    masked = view[np.array([False, True])]
    np.testing.assert_array_equal(np.asarray(masked), values[[1]])
    np.testing.assert_array_equal(np.asarray(whole[np.array([], np.int64)]), values[:0])
