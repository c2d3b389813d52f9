"""Keep the tests off the user's files: a home, caches and a store of the session's own.

Imported by conftest.py before anything else, so Keras (which reads ``KERAS_HOME`` when it
is imported), MLflow and matplotlib only ever see the session's folders. The real home
directory is watched: a file created, changed or removed under it during the session (its
inode change time moves) fails the run. The checkout and the Python installation are the
project's and the interpreter's, not the user's, and are not watched: Python writes its
bytecode caches there.
"""

from __future__ import annotations

import os
import shutil
import stat
import sys
import tempfile
import time
from pathlib import Path

# xdist's workers inherit the launching process's environment, the session's HOME included.
REAL_HOME = Path(os.environ.setdefault("EXPERIMENTS_TESTS_REAL_HOME", os.path.expanduser("~")))
REAL_HOME = REAL_HOME.resolve()
ROOT = Path(__file__).resolve().parents[1]

# Before the session's HOME replaces it: a user whose only copy of Fashion-MNIST is in
# Keras' cache under the real home keeps it, read-only, through $FASHION_MNIST_DIR.
_USER_KERAS = Path(os.environ.get("KERAS_HOME", REAL_HOME / ".keras"))
_USER_FASHION = _USER_KERAS / "datasets" / "fashion-mnist"

SESSION = Path(tempfile.mkdtemp(prefix="experiments-tests-"))
ENVIRONMENT = {
    "HOME": SESSION / "home",
    "XDG_CACHE_HOME": SESSION / "cache",
    "XDG_CONFIG_HOME": SESSION / "config",
    "XDG_DATA_HOME": SESSION / "share",
    "KERAS_HOME": SESSION / "keras",
    "MPLCONFIGDIR": SESSION / "matplotlib",
    "PIP_CACHE_DIR": SESSION / "cache" / "pip",
}
DEFAULT_STORE = f"sqlite:///{SESSION / 'store' / 'mlflow.db'}"
# No usage reports from the tests; and MLflow's telemetry thread sets and unsets an
# environment variable while other threads read os.environ, which can fail a request
# (KeyError: '_MLFLOW_TELEMETRY_SESSION_ID', seen in a SLURM job of the suite).
os.environ["MLFLOW_DISABLE_TELEMETRY"] = "true"

for _name, _folder in ENVIRONMENT.items():
    _folder.mkdir(parents=True, exist_ok=True)
    os.environ[_name] = str(_folder)
(SESSION / "store").mkdir()
os.environ["MLFLOW_TRACKING_URI"] = DEFAULT_STORE
_USER_FILE = _USER_FASHION / "train-images-idx3-ubyte.gz"
if "FASHION_MNIST_DIR" not in os.environ and _USER_FILE.is_file():
    os.environ["FASHION_MNIST_DIR"] = str(_USER_FASHION)


def start(config) -> None:
    """Note when the session began, in the process that launched it (not in xdist workers)."""
    if not hasattr(config, "workerinput"):
        config._experiments_started = time.time_ns()


def finish(config) -> None:
    shutil.rmtree(SESSION, ignore_errors=True)


def _unwatched() -> set[Path]:
    return {Path(p).resolve() for p in (ROOT, sys.prefix, sys.base_prefix, SESSION)}


def home_changes(config) -> list[str]:
    """Paths under the real home whose inode changed since the session started."""
    started = getattr(config, "_experiments_started", None)
    if started is None or not REAL_HOME.is_dir():
        return []
    # One second of slack: some file systems keep coarse change times.
    return changes_under(REAL_HOME, started - 1_000_000_000, _unwatched())


# What a run writes into its working folder: a test run from the checkout writes none of it.
RUN_OUTPUTS = ("checkpoints", "data", "mlruns", "mlflow.db", "outputs", "multirun", "comparison")


def checkout_changes(config) -> list[str]:
    """A run's outputs in the checkout created or changed since the session started."""
    started = getattr(config, "_experiments_started", None)
    if started is None:
        return []
    found = []
    for name in RUN_OUTPUTS:
        path = ROOT / name
        if path.is_dir():
            found += changes_under(path, started - 1_000_000_000, set())
        elif path.exists() and path.stat().st_ctime_ns >= started - 1_000_000_000:
            found.append(str(path))
    return found


def changes_under(root: Path, since_ns: int, skip: set[Path]) -> list[str]:
    """``root`` and the paths below it (not below ``skip``) changed at or after ``since_ns``.

    A removed file shows as its folder: removing an entry changes the folder's inode. Paths
    stay strings while walking: a ``Path`` per entry made the walk of a home of 250,000
    entries take 2.4 s instead of 1.0 s (2-core AMD EPYC).
    """
    skipped = {str(path) for path in skip}
    changed = [str(root)] if os.stat(root).st_ctime_ns >= since_ns else []
    folders = [str(root)]
    while folders:
        folder = folders.pop()
        try:
            entries = list(os.scandir(folder))
        except OSError:
            continue
        for entry in entries:
            if entry.path in skipped:
                continue
            try:
                info = entry.stat(follow_symlinks=False)
            except OSError:
                continue
            if info.st_ctime_ns >= since_ns:
                changed.append(entry.path)
            if stat.S_ISDIR(info.st_mode):
                folders.append(entry.path)
    return sorted(changed)


def reset_mlflow_uri() -> None:
    """Unpin MLflow's tracking and registry URIs (``set_*_uri`` also export them) and
    experiment.

    A registry URI left pinned (registering a champion sets it) made a later test's
    ``MlflowClient(its_store)`` look for registered models in an earlier test's store.
    """
    if "mlflow" not in sys.modules:
        return
    from mlflow.tracking._model_registry import utils as registry
    from mlflow.tracking._tracking_service import utils

    if utils._tracking_uri is not None:
        utils.set_tracking_uri(None)
    registry._registry_uri = None
    os.environ.pop("MLFLOW_REGISTRY_URI", None)
    os.environ["MLFLOW_TRACKING_URI"] = DEFAULT_STORE
    # set_experiment pins the experiment too, and exports it: a later test's runs (and the
    # commands it starts) would otherwise land in an earlier test's experiment, or refuse.
    from mlflow.tracking import fluent

    fluent._active_experiment_id = None
    os.environ.pop("MLFLOW_EXPERIMENT_ID", None)
    os.environ.pop("MLFLOW_EXPERIMENT_NAME", None)
