"""Image decoding, image folders and synthetic shapes, on real files written with Pillow."""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest
from omegaconf import OmegaConf
from PIL import Image, ImageFile

from experiments.data import image_folder, images, shapes
from experiments.data import registry as datasets
from experiments.errors import ConfigError, DataError
from experiments.training.settings import compose

# ---------------------------------------------------------------- decode: formats and modes


def test_rgba_png_is_composited_on_white(tmp_path):
    pixels = np.zeros((4, 4, 4), np.uint8)
    pixels[:2] = (255, 0, 0, 255)  # opaque red on top
    pixels[2:] = (0, 0, 0, 0)  # fully transparent black below
    Image.fromarray(pixels, "RGBA").save(tmp_path / "a.png")
    out = images.decode(tmp_path / "a.png", 4, 3)
    assert out.shape == (4, 4, 3) and out.dtype == np.uint8
    assert tuple(out[0, 0]) == (255, 0, 0)
    assert tuple(out[3, 3]) == (255, 255, 255)


def test_la_png_to_grayscale(tmp_path):
    Image.new("LA", (3, 3), (0, 0)).save(tmp_path / "la.png")
    assert (images.decode(tmp_path / "la.png", 3, 1) == 255).all()


def test_palette_png(tmp_path):
    image = Image.new("P", (4, 4), 1)
    image.putpalette([0, 0, 0, 0, 0, 255] + [0] * 762)
    image.save(tmp_path / "p.png")
    assert Image.open(tmp_path / "p.png").mode == "P"
    out = images.decode(tmp_path / "p.png", 4, 3)
    assert (out == (0, 0, 255)).all()


def test_palette_png_with_transparent_index(tmp_path):
    image = Image.new("P", (4, 4), 0)
    image.putpalette([0, 0, 0, 0, 0, 255] + [0] * 762)
    image.save(tmp_path / "p.png", transparency=0)
    assert (images.decode(tmp_path / "p.png", 4, 3) == 255).all()


def test_16bit_grayscale_png_is_scaled_not_clipped(tmp_path):
    pixels = np.array([[0, 65535], [257 * 100, 65535]], np.uint16)
    Image.fromarray(pixels).save(tmp_path / "deep.png")
    assert Image.open(tmp_path / "deep.png").mode.startswith("I")
    out = images.decode(tmp_path / "deep.png", 2, 1)
    assert out[..., 0].tolist() == [[0, 255], [100, 255]]


def test_16bit_grayscale_to_rgb(tmp_path):
    Image.fromarray(np.full((2, 2), 65535, np.uint16)).save(tmp_path / "deep.png")
    assert (images.decode(tmp_path / "deep.png", 2, 3) == 255).all()


def test_cmyk_jpeg(tmp_path):
    Image.new("CMYK", (16, 16), (0, 255, 255, 0)).save(tmp_path / "c.jpg", quality=95)
    out = images.decode(tmp_path / "c.jpg", 16, 3).astype(int)
    assert out[..., 0].mean() > 200 and out[..., 1].mean() < 50 and out[..., 2].mean() < 50


def test_gif_gives_its_first_frame(tmp_path):
    frames = [Image.new("L", (8, 8), 0), Image.new("L", (8, 8), 255)]
    frames[0].save(tmp_path / "anim.gif", save_all=True, append_images=frames[1:])
    assert Image.open(tmp_path / "anim.gif").n_frames == 2
    assert (images.decode(tmp_path / "anim.gif", 8, 1) == 0).all()


def test_bmp_and_grayscale_to_rgb(tmp_path):
    Image.new("L", (5, 7), 90).save(tmp_path / "g.bmp")
    out = images.decode(tmp_path / "g.bmp", 6, 3)
    assert out.shape == (6, 6, 3) and (out == 90).all()


def test_rgb_to_grayscale_and_resize(tmp_path):
    Image.new("RGB", (40, 30), (255, 255, 255)).save(tmp_path / "w.png")
    out = images.decode(tmp_path / "w.png", 10, 1)
    assert out.shape == (10, 10, 1) and (out == 255).all()


def _half_black(width: int, height: int) -> Image.Image:
    """Left half black, right half white: shows which way the image was turned."""
    pixels = np.full((height, width), 255, np.uint8)
    pixels[:, : width // 2] = 0
    return Image.fromarray(pixels)


def test_exif_orientation_is_applied(tmp_path):
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90° clockwise to display"
    _half_black(20, 10).save(tmp_path / "turned.jpg", exif=exif.tobytes(), quality=95)
    _half_black(20, 10).save(tmp_path / "plain.jpg", quality=95)
    plain = images.decode(tmp_path / "plain.jpg", 20, 1)[..., 0].astype(int)
    assert plain[:, :8].mean() < 30 and plain[:, 12:].mean() > 225  # left half black
    turned = images.decode(tmp_path / "turned.jpg", 20, 1)[..., 0].astype(int)
    assert turned[:8].mean() < 30 and turned[12:].mean() > 225  # the left edge went to the top


def test_large_jpeg_is_decoded_at_a_smaller_scale(tmp_path):
    _half_black(800, 600).convert("RGB").save(tmp_path / "big.jpg", quality=90)
    out = images.decode(tmp_path / "big.jpg", 32, 3).astype(int)
    assert out.shape == (32, 32, 3)
    assert out[:, :14].mean() < 30 and out[:, 18:].mean() > 225


# ------------------------------------------------------------- decode: files that are skipped


def _assert_skipped(path, caplog, words: str):
    with caplog.at_level(logging.WARNING, logger=images.__name__):
        assert images.decode(path, 8, 3) is None
    assert str(path) in caplog.text and words in caplog.text


def test_truncated_jpeg(tmp_path, caplog):
    noise = np.random.default_rng(0).integers(0, 256, (64, 64, 3), np.uint8)
    Image.fromarray(noise).save(tmp_path / "full.jpg")
    data = (tmp_path / "full.jpg").read_bytes()
    (tmp_path / "cut.jpg").write_bytes(data[: len(data) // 2])
    _assert_skipped(tmp_path / "cut.jpg", caplog, "truncated")


def test_zero_byte_file(tmp_path, caplog):
    (tmp_path / "empty.png").write_bytes(b"")
    _assert_skipped(tmp_path / "empty.png", caplog, "empty")


def test_text_file_named_jpg(tmp_path, caplog):
    (tmp_path / "notes.jpg").write_text("not an image at all\n")
    _assert_skipped(tmp_path / "notes.jpg", caplog, "cannot decode")


def test_missing_file_is_skipped(tmp_path, caplog):
    _assert_skipped(tmp_path / "gone.png", caplog, "cannot decode")


def test_decompression_bomb_is_refused_before_decoding(tmp_path, caplog, monkeypatch):
    Image.new("RGB", (20, 20)).save(tmp_path / "bomb.png")
    monkeypatch.setattr(images, "MAX_PIXELS", 100)

    def never(self):
        raise AssertionError("a decompression bomb must not be decoded")

    monkeypatch.setattr(ImageFile.ImageFile, "load", never)
    _assert_skipped(tmp_path / "bomb.png", caplog, "decompression bomb")


@pytest.mark.parametrize("pillow_limit", [150, 300])  # over 2x Pillow's limit raises, over 1x warns
def test_pillow_decompression_bomb_error_and_warning_are_skips(
    tmp_path, caplog, monkeypatch, pillow_limit
):
    Image.new("RGB", (20, 20)).save(tmp_path / "bomb.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", pillow_limit)
    _assert_skipped(tmp_path / "bomb.png", caplog, "decompression bomb")


def test_bad_channels_is_a_programming_error(tmp_path):
    Image.new("RGB", (4, 4)).save(tmp_path / "a.png")
    with pytest.raises(ValueError, match="channels"):
        images.decode(tmp_path / "a.png", 4, 2)


def test_image_suffixes(tmp_path):
    assert images.is_image_file(tmp_path / "A.JPG")
    assert images.is_image_file(tmp_path / "b.TiFf")
    assert not images.is_image_file(tmp_path / "notes.txt")
    assert not images.is_image_file(tmp_path / ".DS_Store")
    assert not images.is_image_file(tmp_path / "._hidden.jpg")
    assert images.is_image_file("c.Png") and not images.is_image_file(".jpg")  # bare names


def test_a_class_folder_lists_its_image_files_by_name(tmp_path):
    """Files (and links to files) with an image suffix, sorted; no folder, whatever its name."""
    from experiments.data import image_folder

    for name in ("b.png", "a.JPG", "c.jpeg"):
        Image.new("RGB", (4, 4)).save(tmp_path / name)
    (tmp_path / "folder.jpg").mkdir()
    (tmp_path / "link.png").symlink_to(tmp_path / "b.png")
    (tmp_path / "broken.png").symlink_to(tmp_path / "gone.png")
    (tmp_path / ".hidden.png").write_bytes(b"")
    names = [path.name for path in image_folder._image_files(tmp_path)]
    assert names == ["a.JPG", "b.png", "c.jpeg", "link.png"]


# ------------------------------------------------------------------------------- image folders


def cfg(root=None, **overrides):
    base = {
        "root": None if root is None else str(root),
        "limit": None,
        "val_split": 0.2,
        "test_split": 0.2,
        "image_size": 8,
        "channels": 3,
    }
    return OmegaConf.create({**base, **overrides})


def write_class(folder, n, value, size=(12, 10), suffix=".png"):
    """``n`` solid images of grey ``value``: each class recognisable by its pixel value."""
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        Image.new("RGB", size, (value, value, value)).save(folder / f"{i}{suffix}")
    return folder


def make_flat(root, counts):
    for k, (name, n) in enumerate(counts.items()):
        write_class(root / name, n, value=40 * k)
    return root


def test_flat_layout_split_is_stratified(tmp_path):
    root = make_flat(tmp_path / "pets", {"cat": 20, "dog": 10, "emu": 30})
    splits = image_folder.load(cfg(root), seed=1)
    assert splits.class_names == ["cat", "dog", "emu"]
    assert (len(splits.y_train), len(splits.y_val), len(splits.y_test)) == (36, 12, 12)
    for y, expected in [(splits.y_val, [4, 2, 6]), (splits.y_test, [4, 2, 6])]:
        assert np.bincount(y, minlength=3).tolist() == expected
    assert np.bincount(splits.y_train).tolist() == [12, 6, 18]
    assert splits.x_train.shape == (36, 8, 8, 3) and splits.x_train.dtype == np.uint8
    assert splits.y_train.dtype == np.int64
    # labels follow the folders: class k was written with grey 40 * k
    for x, y in [(splits.x_train, splits.y_train), (splits.x_test, splits.y_test)]:
        assert (x[:, 0, 0, 0] == 40 * y).all()
    assert splits.source == f"image folder {root}"
    assert splits.skipped == 0


def test_flat_split_is_seeded(tmp_path):
    root = tmp_path / "data"
    for k, name in enumerate(["a", "b"]):
        (root / name).mkdir(parents=True)
        for i in range(10):  # every image distinct, to see where it went
            Image.new("L", (4, 4), 10 * k + i).save(root / name / f"{i}.png")
    first, again, other = (image_folder.load(cfg(root, channels=1), s) for s in (3, 3, 4))
    assert np.array_equal(first.x_test, again.x_test)
    assert np.array_equal(first.x_train, again.x_train)
    assert not np.array_equal(first.x_test, other.x_test)
    everything = np.concatenate([first.x_train, first.x_val, first.x_test])[:, 0, 0, 0]
    assert sorted(everything.tolist()) == list(range(20))  # nothing lost, nothing repeated


def test_tiny_classes_still_reach_every_split(tmp_path):
    root = make_flat(tmp_path / "tiny", {"a": 3, "b": 4})
    splits = image_folder.load(cfg(root, val_split=0.1, test_split=0.1), seed=0)
    for y in (splits.y_train, splits.y_val, splits.y_test):
        assert sorted(set(y.tolist())) == [0, 1]


def test_a_class_too_small_to_test_is_named_and_kept_for_training_only(tmp_path, caplog):
    """A class of 1 image used to drop out of validation and test without a word."""
    from types import SimpleNamespace

    from experiments.reporting import reports
    from experiments.training import record

    root = make_flat(tmp_path / "tiny", {"a": 10, "b": 10, "c": 1})
    with caplog.at_level(logging.WARNING):
        splits = image_folder.load(cfg(root), seed=0)
    assert "Class 'c' has 1 readable image(s), fewer than 3" in caplog.text
    assert 2 in splits.y_train and 2 not in splits.y_val and 2 not in splits.y_test
    caplog.clear()
    data = SimpleNamespace(y_test=splits.y_test, num_classes=3, class_names=splits.class_names)
    with caplog.at_level(logging.WARNING):
        assert record._tested_classes(data) == 2  # logged as test_classes
    assert "The test metrics cover 2 of 3 classes: 'c' had no test image" in caplog.text
    matrix = reports.confusion_matrix(splits.y_test, splits.y_test, 3)
    scores = reports.per_class_scores(matrix, splits.class_names)
    assert scores["support"][2] == 0 and scores["recall"][2] is None and scores["f1"][2] is None
    assert scores["recall"][:2] == [1.0, 1.0]


def test_training_and_predict_list_the_same_files_links_included(tmp_path, caplog):
    """A class folder that is a link, a linked sub-folder and a link loop, as a NAS has them."""
    from experiments.commands import predict

    root = make_flat(tmp_path / "data", {"cat": 20})
    write_class(tmp_path / "elsewhere" / "dog", 20, value=200)
    (root / "dog").symlink_to(tmp_path / "elsewhere" / "dog")  # a whole class elsewhere
    write_class(tmp_path / "elsewhere" / "more_cats", 20, value=40)
    (root / "cat" / "more").symlink_to(tmp_path / "elsewhere" / "more_cats")
    (root / "cat" / "loop").symlink_to(root)  # back up: followed for ever, before
    with caplog.at_level(logging.WARNING):
        listed = image_folder._list_flat(root)
        shown = predict.list_inputs(str(root))
    assert len(listed.paths) == 60 and shown == listed.paths
    assert np.bincount(listed.labels).tolist() == [40, 20]
    assert f"Skipped {root / 'cat' / 'loop'}: a link back to a folder above it" in caplog.text


def test_relative_root_is_from_the_working_directory(tmp_path, monkeypatch):
    make_flat(tmp_path / "rel", {"a": 5, "b": 5})
    monkeypatch.chdir(tmp_path)
    splits = image_folder.load(cfg("rel"), seed=0)
    assert splits.source == f"image folder {tmp_path / 'rel'}"


def test_pre_split_layout(tmp_path):
    root = tmp_path / "split"
    for split, n in [("train", 6), ("val", 2), ("test", 3)]:
        write_class(root / split / "no", n, value=0)
        write_class(root / split / "yes", n, value=200)
    splits = image_folder.load(cfg(root), seed=0)
    assert splits.class_names == ["no", "yes"]
    assert (len(splits.y_train), len(splits.y_val), len(splits.y_test)) == (12, 4, 6)
    assert np.bincount(splits.y_test).tolist() == [3, 3]
    assert (splits.x_val[:, 0, 0, 0] == 200 * splits.y_val).all()


def test_pre_split_without_val_holds_it_out_of_train(tmp_path):
    root = tmp_path / "split"
    for split, n in [("train", 10), ("test", 3)]:
        write_class(root / split / "no", n, value=0)
        write_class(root / split / "yes", n, value=200)
    splits = image_folder.load(cfg(root, val_split=0.2), seed=0)
    assert (len(splits.y_train), len(splits.y_val), len(splits.y_test)) == (16, 4, 6)


def test_pre_split_classes_must_match(tmp_path):
    root = tmp_path / "split"
    for name in ("a", "b"):
        write_class(root / "train" / name, 2, value=0)
    for name in ("a", "c"):
        write_class(root / "test" / name, 2, value=0)
    with pytest.raises(DataError, match="missing \\['b'\\], extra \\['c'\\]") as err:
        image_folder.load(cfg(root), seed=0)
    assert str(root / "test") in str(err.value)


def test_corrupt_and_foreign_files(tmp_path, caplog):
    root = make_flat(tmp_path / "data", {"a": 5, "b": 5})
    (root / "a" / "broken.jpg").write_bytes(b"\xff\xd8\xff garbage")
    (root / "b" / "empty.png").write_bytes(b"")
    (root / "a" / "notes.txt").write_text("ignored")
    (root / "b" / ".DS_Store").write_bytes(b"\0\0")
    (root / ".hidden").mkdir()
    with caplog.at_level(logging.INFO):
        splits = image_folder.load(cfg(root), seed=0)
    assert splits.skipped == 2
    assert len(splits.y_train) + len(splits.y_val) + len(splits.y_test) == 10
    assert splits.class_names == ["a", "b"]
    assert "broken.jpg" in caplog.text and "skipped 2 files" in caplog.text
    assert "notes.txt" not in caplog.text and ".DS_Store" not in caplog.text


def folder_cfg(root, *overrides):
    """The real ``dataset=image_folder`` configuration, at 8 px, for the folder ``root``."""
    settings = [f"dataset.root={root}", "dataset.image_size=8", f"dataset.cache_dir={root}.cache"]
    return compose(["dataset=image_folder", *settings, *overrides]).dataset


def test_limit_caps_training_and_validation_in_proportion(tmp_path):
    root = make_flat(tmp_path / "data", {"a": 20, "b": 20})
    full = datasets.load(folder_cfg(root), seed=5)
    capped = datasets.load(folder_cfg(root, "dataset.limit=7"), seed=5)
    assert len(full.y_train) == 28 and len(capped.y_train) == 7
    assert len(capped.y_val) == round(7 * 0.15 / 0.85) < len(full.y_val)
    assert len(capped.y_test) == len(full.y_test)
    again = datasets.load(folder_cfg(root, "dataset.limit=7"), seed=5)
    assert np.array_equal(capped.y_train, again.y_train)
    assert np.array_equal(capped.x_val, again.x_val)


def test_grayscale_folder(tmp_path):
    root = make_flat(tmp_path / "data", {"a": 4, "b": 4})
    splits = image_folder.load(cfg(root, channels=1, image_size=5), seed=0)
    assert splits.input_shape == (5, 5, 1) and splits.num_classes == 2


@pytest.mark.parametrize(
    ("build", "words"),
    [
        (lambda root: None, "does not exist"),
        (lambda root: root.write_text("x"), "is not a folder"),
        (lambda root: root.mkdir(), "is empty"),
        (
            lambda root: write_class(root / "only", 3, 0),
            "at least 2 class sub-folders of images, found 1",
        ),
        (lambda root: write_class(root, 3, 0), "at least 2 class sub-folders of images, found 0"),
    ],
    ids=["missing", "file", "empty", "one-class", "no-class-folders"],
)
def test_folder_errors_name_the_path(tmp_path, build, words):
    root = tmp_path / "data"
    build(root)
    with pytest.raises(DataError, match=words) as err:
        image_folder.load(cfg(root), seed=0)
    assert str(root) in str(err.value)


def test_hidden_and_archive_metadata_folders_are_not_classes(tmp_path, caplog):
    root = make_flat(tmp_path / "pets", {"cat": 5, "dog": 5})
    # What unzipping a macOS archive leaves beside the classes, and a hidden folder.
    write_class(root / "__MACOSX" / "cat", 5, value=200)
    write_class(root / ".thumbnails", 5, value=220)
    write_class(root / "@eaDir", 2, value=230)
    with caplog.at_level(logging.INFO, logger="experiments.data.listing"):
        splits = image_folder.load(cfg(root), seed=0)
        again = image_folder.load(cfg(root), seed=0)
    assert splits.class_names == again.class_names == ["cat", "dog"]
    assert set(np.unique(splits.x_train)) <= {0, 40}  # no pixel from the ignored folders
    ignored = [r.getMessage() for r in caplog.records if r.getMessage().startswith("Ignored")]
    assert sorted(ignored) == sorted(
        [  # each folder once, though the folder was read twice
            f"Ignored {root / '.thumbnails'} (hidden)",
            f"Ignored {root / '@eaDir'} (a metadata folder, not images)",
            f"Ignored {root / '__MACOSX'} (a metadata folder, not images)",
        ]
    )
    # A folder holding nothing but such folders is empty.
    only = tmp_path / "only"
    write_class(only / "__MACOSX" / "cat", 2, value=1)
    with pytest.raises(DataError, match="is empty"):
        image_folder.load(cfg(only), seed=0)


def test_class_without_readable_image_is_named(tmp_path):
    root = make_flat(tmp_path / "data", {"good": 4})
    (root / "bad").mkdir()
    (root / "bad" / "x.png").write_bytes(b"nope")
    with pytest.raises(DataError, match="no readable image") as err:
        image_folder.load(cfg(root), seed=0)
    assert str(root / "bad") in str(err.value)


def test_class_with_no_image_files_is_named(tmp_path):
    root = make_flat(tmp_path / "data", {"good": 4})
    (root / "other").mkdir()
    (root / "other" / "readme.txt").write_text("hi")
    with pytest.raises(DataError, match="holds no files ending in") as err:
        image_folder.load(cfg(root), seed=0)
    assert str(root / "other") in str(err.value)


def test_split_folders_without_train_are_refused(tmp_path):
    root = tmp_path / "data"
    for split in ("val", "test"):
        write_class(root / split, 2, 0)
    with pytest.raises(DataError, match="no train/ folder") as err:
        image_folder.load(cfg(root), seed=0)
    assert str(root / "train") in str(err.value)


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("channels", 2),
        ("image_size", 0),
        ("val_split", 1.0),
        ("val_split", 0),
        ("test_split", 0.9),
        ("limit", 0),
    ],
)
def test_bad_settings_are_config_errors_of_the_key(tmp_path, key, value):
    root = make_flat(tmp_path / "data", {"a": 2, "b": 2})
    with pytest.raises(ConfigError, match=f"^dataset.{key}|^dataset.test_split: val_split"):
        folder_cfg(root, f"dataset.{key}={value}")


def test_missing_root_setting_is_a_config_error():
    with pytest.raises(ConfigError, match="dataset.root"):
        image_folder.load(cfg(None), seed=0)


# ------------------------------------------------------------------------------------ shapes


def test_generation_is_deterministic(tmp_path):
    one = shapes.generate(tmp_path / "one", per_class=3, size=16, seed=7)
    two = shapes.generate(tmp_path / "two", per_class=3, size=16, seed=7)
    other = shapes.generate(tmp_path / "other", per_class=3, size=16, seed=8)
    files = sorted(p.relative_to(one) for p in one.rglob("*.png"))
    assert files == sorted(p.relative_to(two) for p in two.rglob("*.png"))
    assert all((one / f).read_bytes() == (two / f).read_bytes() for f in files)
    assert any((one / f).read_bytes() != (other / f).read_bytes() for f in files)


def test_generation_makes_four_classes_of_the_requested_size(tmp_path):
    root = shapes.generate(tmp_path / "data" / "shapes", per_class=5, size=24, seed=0)
    assert sorted(p.name for p in root.iterdir() if p.is_dir()) == sorted(shapes.CLASSES)
    for name in shapes.CLASSES:
        files = sorted((root / name).glob("*.png"))
        assert len(files) == 5
        for path in files:
            with Image.open(path) as image:
                assert image.size == (24, 24) and image.mode == "RGB"
                pixels = np.asarray(image.convert("L"), int)
            assert pixels.max() - pixels.min() >= 40  # the shape stands out, even in grayscale
    assert json.loads((root / ".complete").read_text()) == {"per_class": 5, "size": 24, "seed": 0}
    assert [p.name for p in root.parent.iterdir()] == ["shapes"]  # no staging folder left behind


def test_generation_refuses_to_overwrite_a_foreign_folder(tmp_path):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "thesis.tex").write_text("precious")
    with pytest.raises(DataError, match="will not be overwritten") as err:
        shapes.generate(tmp_path / "mine", per_class=1, size=8, seed=0)
    assert str(tmp_path / "mine") in str(err.value)
    assert (tmp_path / "mine" / "thesis.tex").exists()


def test_interrupted_generation_is_redone(tmp_path):
    root = tmp_path / "shapes"
    write_class(root / "circle", 1, 0)  # what an interrupted run may have left, with no marker
    shapes.generate(root, per_class=2, size=8, seed=0)
    assert len(list((root / "circle").glob("*.png"))) == 2


def shapes_cfg(root, **overrides):
    base = {"name": "shapes", "root": str(root), "limit": None, "val_split": 0.1}
    base.update({"test_split": 0.1, "image_size": 16, "channels": 3, "per_class": 10})
    return OmegaConf.create({**base, **overrides})


def test_load_generates_once_then_reuses(tmp_path, caplog, monkeypatch):
    root = tmp_path / "shapes"
    with caplog.at_level(logging.INFO, logger=shapes.__name__):
        splits = shapes.load(shapes_cfg(root), seed=0)
    assert "Generating 10 synthetic images per shape" in caplog.text
    assert splits.class_names == sorted(shapes.CLASSES)
    assert (len(splits.y_train), len(splits.y_val), len(splits.y_test)) == (32, 4, 4)
    assert splits.x_train.shape == (32, 16, 16, 3) and splits.x_test.dtype == np.uint8
    assert splits.source == f"synthetic shapes ({root})"

    def fail(*args, **kwargs):
        raise AssertionError("the marker matches: nothing to regenerate")

    monkeypatch.setattr(shapes, "generate", fail)
    again = shapes.load(shapes_cfg(root, channels=1), seed=0)
    assert again.input_shape == (16, 16, 1)


def test_load_regenerates_when_settings_change(tmp_path):
    root = tmp_path / "shapes"
    shapes.load(shapes_cfg(root), seed=0)
    splits = shapes.load(shapes_cfg(root, per_class=5, image_size=12), seed=0)
    assert len(list((root / "star").glob("*.png"))) == 5
    assert splits.input_shape == (12, 12, 3)


def test_load_defaults(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    overrides = ["dataset=shapes", "dataset.limit=8", "dataset.image_size=8"]
    shapes_dataset = compose(overrides).dataset
    splits = datasets.load(shapes_dataset, seed=0)  # per_class from conf/dataset/shapes.yaml
    root = tmp_path / "data" / "shapes"
    assert len(list((root / "square").glob("*.png"))) == shapes_dataset.per_class == 100
    assert len(splits.y_train) == 8 and splits.source == f"synthetic shapes ({root})"
