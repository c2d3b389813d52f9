"""Shared fixtures: a temporary MLflow store, the real Fashion-MNIST files, a clean cwd.

Isolation: before anything imports Keras, MLflow or matplotlib, the session points HOME,
the XDG folders, KERAS_HOME, MPLCONFIGDIR and MLFLOW_TRACKING_URI into a temporary folder
of its own (``isolation``), and each test gets its own HOME and tracking store on top. The
caches that are costly to fill (the precision choice, matplotlib's font list) are shared by
the tests of one session, never with the user nor with another session. A guard in the
launching process fails the session if anything under the real home directory changed.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import isolation  # noqa: E402  (sets the environment before the project imports anything)

from experiments.commands import quiet  # noqa: E402
from experiments.data import fashion_mnist  # noqa: E402


def pytest_configure(config):
    isolation.start(config)
    if hasattr(config, "workerinput") or not config.getoption("numprocesses", None):
        # Where the tests run (not in xdist's launching process, which runs none): TensorFlow
        # as the commands import it, without scikit-learn and SciPy. A worker's collection
        # took 10.3-11.0 s against 13.4 s (2-core AMD EPYC without AVX512, 2026-12-05).
        quiet.import_tensorflow()


# The files that take longest, longest first (seconds of wall time on 2 workers, 2-core
# AMD EPYC, measured per test on 2026-12-04).
# pytest-xdist hands whole files (--dist loadfile) to whichever worker is free, in this
# order (--no-loadscope-reorder: xdist would otherwise start the files with the most
# tests first, and left test_remote_tracking.py, 100 s in 4 tests, and
# test_transfer_from_run.py for the last minutes, one worker busy while the other had
# nothing left). Longest first, the last files to start are short ones.
LONGEST_FIRST = (
    "test_cluster.py",  # 330 s, mostly waiting on its SLURM jobs
    "test_backbone_rows.py",  # 300 s
    "test_sweep.py",  # 230 s
    "test_backbone_matrix.py",  # 170 s
    "test_lab_server.py",  # 106 s
    "test_remote_tracking.py",  # 99 s
    "test_main_job.py",
    "test_image_folder_run.py",
    "test_reliability.py",
    "test_best_epoch.py",
    "test_frozen_features.py",
    "test_transfer_from_run.py",
    "test_export.py",
    "test_explain.py",
    "test_lr_find.py",
    "test_aggregate.py",
    "test_phases.py",
    "test_docs.py",
    "test_backbone_families.py",  # one test, 31 s
    "test_config.py",
    "test_ui.py",
    "test_strategy.py",
    "test_compare.py",
    "test_quiet.py",
    "test_predict.py",
    "test_packaging.py",  # 9 s; the files after it take seconds
)


def pytest_collection_modifyitems(config, items):
    rank = {name: i for i, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: in-file order kept


def pytest_sessionfinish(session, exitstatus):
    changed = isolation.home_changes(session.config) + isolation.checkout_changes(session.config)
    if changed:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
        lines = "\n".join(f"  {path}" for path in changed[:20])
        more = f"\n  ... and {len(changed) - 20} more" if len(changed) > 20 else ""
        print(
            f"\nThe tests changed {len(changed)} path(s) under the real home directory "
            f"{isolation.REAL_HOME} or a run's outputs in the checkout:\n{lines}{more}\n"
            "A test must keep its files under its tmp_path (see tests/isolation.py).",
        )


def pytest_unconfigure(config):
    isolation.finish(config)


@pytest.fixture(autouse=True)
def _own_home_and_store(tmp_path, monkeypatch):
    """HOME and the default tracking store of this test alone, under its tmp_path."""
    (tmp_path / "store").mkdir(exist_ok=True)
    (tmp_path / "home").mkdir(exist_ok=True)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    isolation.reset_mlflow_uri()
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'store' / 'default.db'}")
    yield
    isolation.reset_mlflow_uri()


@pytest.fixture
def workdir(tmp_path, monkeypatch) -> Path:
    """Run in an empty folder, with no tracking URI inherited from the environment."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    return tmp_path


@pytest.fixture(scope="session")
def _migrated_store() -> Path:
    """An empty store whose schema MLflow has created and migrated (about a second), once."""
    import mlflow

    db = isolation.SESSION / "migrated" / "mlflow.db"
    db.parent.mkdir()
    mlflow.MlflowClient(f"sqlite:///{db}").search_experiments()  # creates the schema
    isolation.reset_mlflow_uri()
    return db


@pytest.fixture
def fresh_store_uri(workdir):
    """A store that does not exist yet: the command under test creates it."""
    import mlflow

    uri = f"sqlite:///{workdir / 'store' / 'mlflow.db'}"
    mlflow.set_tracking_uri(uri)
    yield uri
    isolation.reset_mlflow_uri()


@pytest.fixture
def store_uri(workdir, _migrated_store):
    """An empty embedded store, as a fresh one is once created; the test's client reads it too.

    A copy of the session's migrated store: creating the schema anew costs every test a
    second. Its Default experiment keeps its artifacts in this test's folder, as a store
    created here would.
    """
    import sqlite3

    import mlflow

    db = workdir / "store" / "mlflow.db"
    shutil.copyfile(_migrated_store, db)
    with contextlib.closing(sqlite3.connect(db)) as connection, connection:
        connection.execute(
            "UPDATE experiments SET artifact_location = ? WHERE experiment_id = 0",
            (str(workdir / "mlruns" / "0"),),
        )
    uri = f"sqlite:///{db}"
    mlflow.set_tracking_uri(uri)
    yield uri
    isolation.reset_mlflow_uri()


@pytest.fixture(scope="session")
def fashion_dir() -> Path:
    """The real Fashion-MNIST IDX files (CI installs Debian's dataset-fashion-mnist)."""
    folder, _ = fashion_mnist.locate(None)
    if folder is None:
        if os.environ.get("CI"):
            pytest.fail("Fashion-MNIST is missing: apt-get install dataset-fashion-mnist")
        pytest.skip("Fashion-MNIST files not installed (apt-get install dataset-fashion-mnist)")
    return folder
