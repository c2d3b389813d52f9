"""The tests' own isolation: nothing of the user's is read or written (tests/isolation.py)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import isolation


def test_home_caches_and_store_are_the_sessions_or_the_tests(tmp_path):
    assert Path(os.environ["HOME"]) == tmp_path / "home"
    assert Path.home() == tmp_path / "home"
    assert os.environ["MLFLOW_TRACKING_URI"] == f"sqlite:///{tmp_path / 'store' / 'default.db'}"
    for name in ("XDG_CACHE_HOME", "XDG_CONFIG_HOME", "KERAS_HOME", "MPLCONFIGDIR"):
        assert Path(os.environ[name]).is_relative_to(isolation.SESSION), name
    assert not isolation.SESSION.is_relative_to(isolation.REAL_HOME)


def test_keras_and_mlflow_read_the_sessions_folders(tmp_path):
    import mlflow
    from keras.src.backend import config

    assert Path(config.keras_home()).is_relative_to(isolation.SESSION)
    assert mlflow.get_tracking_uri() == f"sqlite:///{tmp_path / 'store' / 'default.db'}"


def test_the_guard_sees_a_file_created_changed_or_removed_and_skips_what_it_is_told(tmp_path):
    home = tmp_path / "fake-home"
    (home / "deep" / "er").mkdir(parents=True)
    (home / "deep" / "er" / "kept.txt").write_text("a")
    (home / "gone.txt").write_text("b")
    (home / "checkout").mkdir()
    time.sleep(0.05)
    since = time.time_ns()
    time.sleep(0.05)
    assert isolation.changes_under(home, since, set()) == []

    (home / "deep" / "er" / "kept.txt").write_text("changed")
    (home / "gone.txt").unlink()
    (home / "checkout" / "__pycache__").mkdir()
    changed = isolation.changes_under(home, since, {home / "checkout"})
    assert changed == [str(home), str(home / "deep" / "er" / "kept.txt")]
