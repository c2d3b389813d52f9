"""A user's own image folder, with the usual damage in it, trains end to end."""

from __future__ import annotations

import mlflow
import numpy as np
import pytest
from helpers import app_main, in_process, killed_after_first_epoch, resume_cli
from PIL import Image


def write_folder(root):
    rng = np.random.default_rng(0)
    for k, name in enumerate(["apples", "pears"]):
        folder = root / name
        folder.mkdir(parents=True)
        for i in range(10):
            pixels = np.full((40, 50, 3), 60 + 120 * k, np.uint8) + rng.integers(
                0, 40, (40, 50, 3), np.uint8
            )
            Image.fromarray(pixels).save(folder / f"{i}.jpg")
    Image.new("RGBA", (30, 30), (255, 0, 0, 128)).save(root / "apples" / "rgba.png")
    Image.new("CMYK", (30, 30), (0, 50, 50, 0)).save(root / "pears" / "cmyk.jpg")
    (root / "pears" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    (root / "pears" / "notes.txt").write_text("not an image, not counted")


@pytest.mark.slow
def test_image_folder_run_skips_the_corrupt_file_and_says_so(workdir, store_uri):
    write_folder(workdir / "fruit")
    result = in_process(
        app_main,
        "dataset=image_folder",
        "dataset.root=fruit",
        "dataset.image_size=32",
        "trainer.epochs=1",
        "trainer.verbose=0",
        "cost=quick",
        "interpretation=off",
        f"mlflow.tracking_uri={store_uri}",
        cwd=workdir,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    log = result.stdout + result.stderr
    assert "broken.jpg" in log and "skipped 1 files" in log
    run = mlflow.search_runs(experiment_names=["experiments"], output_format="list")[0]
    assert run.info.status == "FINISHED"
    assert run.data.tags["data.skipped_files"] == "1"
    assert run.data.params["data.classes"] == "apples,pears"
    sizes = [int(run.data.params[f"data.{s}_size"]) for s in ("train", "val", "test")]
    assert sum(sizes) == 22  # 20 JPEGs + the RGBA PNG + the CMYK JPEG


@pytest.mark.slow
def test_a_second_transfer_run_opens_the_cache_and_reuses_the_features(workdir, store_uri):
    """Two runs of a learning-rate sweep, one after the other, through the command's main."""
    write_folder(workdir / "fruit")
    logs = []
    for lr in ("0.001", "0.01"):
        result = in_process(
            app_main,
            "dataset=image_folder",
            "dataset.root=fruit",
            "dataset.image_size=32",
            "backbone=mobilenet",
            "backbone.weights=null",
            "phase=transfer",
            f"optimizer.lr={lr}",
            "trainer.epochs=1",
            "trainer.verbose=0",
            "cost=quick",
            "interpretation=off",
            "mlflow.log_model=false",
            f"mlflow.tracking_uri={store_uri}",
            cwd=workdir,
        )
        assert result.returncode == 0, result.stderr[-3000:]
        logs.append(result.stdout + result.stderr)
    assert "Decoding 23 images into the cache" in logs[0] and "Decoding" not in logs[1]
    assert "broken.jpg" in logs[1] and "skipped 1 files" in logs[1]  # still said from the cache
    runs = mlflow.search_runs(
        experiment_names=["experiments"], output_format="list", order_by=["start_time ASC"]
    )
    assert [r.data.tags["frozen_features"] for r in runs] == ["computed", "reused"]
    assert [r.data.tags["data.skipped_files"] for r in runs] == ["1", "1"]
    client = mlflow.MlflowClient(store_uri)
    digests = [
        {
            i.dataset.name: i.dataset.digest
            for i in client.get_run(r.info.run_id).inputs.dataset_inputs
        }
        for r in runs
    ]
    assert digests[0] == digests[1] and len(digests[0]) == 3  # the same data, split the same
    assert (workdir / "data" / ".cache" / "images").is_dir()


def test_missing_root_is_one_clear_line(workdir):
    result = in_process(app_main, "dataset=image_folder", "dataset.root=nowhere", cwd=workdir)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1].startswith("error: ")
    assert str(workdir / "nowhere") in result.stderr


def test_image_folder_needs_a_root(workdir):
    result = in_process(app_main, "dataset=image_folder", cwd=workdir)
    assert result.returncode != 0
    assert "dataset.root" in result.stderr


def test_a_split_left_empty_is_refused_before_training(workdir):
    from experiments.data import registry as datasets
    from experiments.errors import DataError
    from experiments.training.settings import compose

    write_folder(workdir / "fruit")
    cfg = compose(
        [
            "dataset=image_folder",
            "dataset.root=fruit",
            "dataset.image_size=32",
            "dataset.test_split=0",
        ]
    )
    with pytest.raises(DataError, match="the test split is empty"):
        datasets.load(cfg.dataset, cfg.seed)


def test_a_class_named_twice_is_refused(workdir):
    from experiments.data import registry as datasets
    from experiments.errors import ConfigError
    from experiments.training.settings import compose

    write_folder(workdir / "fruit")
    cfg = compose(
        [
            "dataset=image_folder",
            "dataset.root=fruit",
            "dataset.image_size=32",
            "dataset.classes=[apples,pears,apples]",
        ]
    )
    with pytest.raises(ConfigError, match="named twice"):
        datasets.load(cfg.dataset, cfg.seed)


@pytest.mark.slow
def test_a_run_on_cached_images_killed_then_resumed_reads_the_same_cache(workdir, store_uri):
    """Resume works on streamed data: the same split from the cache, no second decode."""
    settings = ["dataset=shapes", "dataset.per_class=150", "dataset.image_size=64"]
    client = mlflow.MlflowClient(store_uri)
    run_id, killed = killed_after_first_epoch(
        client,
        *settings,
        "trainer.epochs=30",
        "trainer.verbose=0",
        "cost=quick",
        "interpretation=off",
        f"mlflow.tracking_uri={store_uri}",
        cwd=workdir,
    )
    assert run_id, "the run never logged its first epoch"
    assert "Decoding 600 images into the cache" in killed.stdout + killed.stderr
    assert client.get_run(run_id).info.status == "KILLED", "it ended before it was killed"
    sizes = {k: v for k, v in client.get_run(run_id).data.params.items() if k.endswith("_size")}

    # Thirty epochs keep it running until it is killed; the resumed run may stop sooner.
    resumed = resume_cli(run_id, store_uri, workdir, "trainer.epochs=3")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    log = resumed.stdout + resumed.stderr
    assert "600 images, opened" in log and "Decoding" not in log
    run = client.get_run(run_id)
    assert run.info.status == "FINISHED"
    assert {k: v for k, v in run.data.params.items() if k.endswith("_size")} == sizes
    steps = sorted(m.step for m in client.get_metric_history(run_id, "val_accuracy"))
    assert steps == list(range(3))
