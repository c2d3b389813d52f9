"""Shared fixtures: a temporary MLflow store, the real Fashion-MNIST files, a clean cwd."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from experiments.data import fashion_mnist  # noqa: E402


@pytest.fixture
def workdir(tmp_path, monkeypatch) -> Path:
    """Run in an empty folder, with no tracking URI inherited from the environment."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    return tmp_path


@pytest.fixture
def store_uri(workdir):
    """A fresh embedded store; the test process's MLflow client reads it too."""
    import mlflow

    uri = f"sqlite:///{workdir / 'store' / 'mlflow.db'}"
    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(uri)
    yield uri
    mlflow.set_tracking_uri(previous)


@pytest.fixture(autouse=True)
def _store_folder(tmp_path):
    (tmp_path / "store").mkdir(exist_ok=True)


@pytest.fixture(scope="session")
def fashion_dir() -> Path:
    """The real Fashion-MNIST IDX files (CI installs Debian's dataset-fashion-mnist)."""
    folder, _ = fashion_mnist.locate(None)
    if folder is None:
        if os.environ.get("CI"):
            pytest.fail("Fashion-MNIST is missing: apt-get install dataset-fashion-mnist")
        pytest.skip("Fashion-MNIST files not installed (apt-get install dataset-fashion-mnist)")
    return folder
