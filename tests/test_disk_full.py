"""A full disk, wherever the project writes: one ``error:`` line, no partial file, and a run
that had opened ends FAILED with the reason. On a real, small tmpfs (mounting needs root)."""

from __future__ import annotations

import os
import subprocess
from types import SimpleNamespace

import mlflow
import pytest
from helpers import app_main, in_process
from PIL import Image

from experiments.errors import DiskFullError
from experiments.folders import disk_full


@pytest.fixture
def small_disk(tmp_path):
    """A 256 KiB tmpfs of this test's own; the folder it is mounted on."""
    folder = tmp_path / "small_disk"
    folder.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(folder)],
        capture_output=True,
        text=True,
    )
    if mounted.returncode != 0:
        reason = f"cannot mount a small tmpfs here ({mounted.stderr.strip()}); needs root"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


def leftovers(folder) -> list[str]:
    """What is left under ``folder``, but for the lock files of the caches."""
    return sorted(
        str(path.relative_to(folder))
        for path in folder.rglob("*")
        if path.is_file() and not path.name.endswith(".lock")
    )


def test_an_image_cache_too_big_for_its_disk_stops_before_decoding(tmp_path, small_disk):
    from experiments.data import image_cache

    paths = []
    for i in range(12):
        paths.append(tmp_path / f"{i}.png")
        Image.new("RGB", (8, 8), (i, i, i)).save(paths[-1])
    stats = [(p.stat().st_size, p.stat().st_mtime_ns) for p in paths]
    files = image_cache.Files(tmp_path, paths, stats, 128, 3)  # 12 x 48 KiB: 576 KiB
    with pytest.raises(DiskFullError) as error:
        image_cache.cached(files, small_disk)
    message = str(error.value)
    assert message.startswith(f"dataset.cache_dir: no space left in {small_disk / 'images'}")
    assert "576.1 KiB needed" in message and "free)" in message
    assert "point dataset.cache_dir at a disk with room, or set dataset.cache=false" in message
    assert leftovers(small_disk) == []  # no partial images.npy


def test_frozen_features_too_big_for_their_disk_leave_nothing(small_disk):
    from experiments.training import frozen_features

    extractor = SimpleNamespace(output_shape=(None, 4, 4, 512))  # 32 KiB an image
    folder = small_disk / "features" / "vgg16-0123"
    folder.parent.mkdir()
    with pytest.raises(DiskFullError, match="phase.cache_features=false"):
        frozen_features._done(folder, extractor, 100, "cache-key")
    assert not folder.exists() and leftovers(small_disk) == []


def test_a_checkpoint_that_does_not_fit_leaves_no_partial_file(small_disk):
    from experiments.training import checkpoints

    with pytest.raises(DiskFullError) as error:
        checkpoints.write_atomically(small_disk / "last.json", b"x" * 1_000_000)
    assert str(error.value).startswith(f"trainer.checkpoints: no space left in {small_disk}")
    assert leftovers(small_disk) == []


def test_an_error_without_a_file_name_still_says_where_to_look():
    message = str(disk_full(None, None, "point the run elsewhere"))
    assert (
        message
        == "no space left on a disk this run writes to: free some space, or point the run elsewhere"
    )


@pytest.mark.slow
def test_a_run_whose_checkpoints_fill_the_disk_ends_failed_in_one_line(
    workdir, small_disk, fashion_dir
):
    """The working folder (checkpoints/) on the full disk; the store and logs elsewhere."""
    uri = f"sqlite:///{workdir / 'store' / 'mlflow.db'}"
    (workdir / "store").mkdir(exist_ok=True)
    result = in_process(
        app_main,
        "dataset.limit=64",
        "trainer.epochs=1",
        "trainer.verbose=0",
        "cost=quick",
        "interpretation=off",
        "mlflow.samples=0",
        "mlflow.log_model=false",
        f"mlflow.tracking_uri={uri}",
        f"hydra.run.dir={workdir / 'outputs'}",
        cwd=small_disk,
    )
    assert result.returncode == 2, result.stderr[-3000:]
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith(f"error: trainer.checkpoints: no space left in {small_disk}")
    assert "free some space, or move the run to a disk with room" in last
    [run] = mlflow.MlflowClient(uri).search_runs(
        [mlflow.MlflowClient(uri).get_experiment_by_name("experiments").experiment_id]
    )
    assert run.info.status == "FAILED"
    assert run.data.tags["failure_reason"].startswith("DiskFullError: trainer.checkpoints")
    partial = [p for p in leftovers(small_disk) if ".partial" in p]
    assert partial == []
