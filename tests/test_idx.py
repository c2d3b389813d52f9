"""The IDX reader against files it writes itself, against damaged files and the real data."""

from __future__ import annotations

import gzip

import numpy as np
import pytest

from experiments.data import fashion_mnist
from experiments.data.idx import read_idx, write_idx
from experiments.errors import DataError


@pytest.mark.parametrize("suffix", [".gz", ""])
def test_round_trip_images_and_labels(tmp_path, suffix):
    images = np.random.default_rng(0).integers(0, 256, (7, 5, 4), dtype=np.uint8)
    labels = np.arange(7, dtype=np.uint8)
    write_idx(tmp_path / f"images{suffix}", images)
    write_idx(tmp_path / f"labels{suffix}", labels)
    np.testing.assert_array_equal(read_idx(tmp_path / f"images{suffix}"), images)
    np.testing.assert_array_equal(read_idx(tmp_path / f"labels{suffix}"), labels)


def test_hand_written_header_is_parsed_big_endian(tmp_path):
    # magic 0x00000803 (unsigned bytes, 3 dims), dims 2 x 2 x 3, then 12 pixels
    payload = bytes([0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 2, 0, 0, 0, 3]) + bytes(range(12))
    (tmp_path / "x.idx").write_bytes(payload)
    array = read_idx(tmp_path / "x.idx")
    assert array.shape == (2, 2, 3)
    assert array[1, 1, 2] == 11


def test_int32_values_keep_their_sign(tmp_path):
    values = np.array([-5, 0, 70000], dtype=np.int32)
    write_idx(tmp_path / "v.idx", values)
    np.testing.assert_array_equal(read_idx(tmp_path / "v.idx"), values)


def test_truncated_file_is_refused_with_its_name(tmp_path):
    write_idx(tmp_path / "x.idx", np.zeros((4, 3, 3), np.uint8))
    data = (tmp_path / "x.idx").read_bytes()
    (tmp_path / "x.idx").write_bytes(data[:-5])
    with pytest.raises(DataError, match="x.idx"):
        read_idx(tmp_path / "x.idx")


def test_not_an_idx_file(tmp_path):
    (tmp_path / "y.gz").write_bytes(gzip.compress(b"hello world"))
    with pytest.raises(DataError, match="not an IDX file"):
        read_idx(tmp_path / "y.gz")


def test_real_fashion_mnist_files(fashion_dir):
    x_train = read_idx(fashion_dir / fashion_mnist.FILES["x_train"])
    y_train = read_idx(fashion_dir / fashion_mnist.FILES["y_train"])
    x_test = read_idx(fashion_dir / fashion_mnist.FILES["x_test"])
    assert x_train.shape == (60000, 28, 28) and x_train.dtype == np.uint8
    assert x_test.shape == (10000, 28, 28)
    assert sorted(np.unique(y_train)) == list(range(10))
    assert np.bincount(y_train).tolist() == [6000] * 10
