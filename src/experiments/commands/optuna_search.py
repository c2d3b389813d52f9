"""``hparams_search=optuna``: a study that a SQLite file keeps, for Hydra's Optuna sweeper.

``hydra.sweeper.storage=sqlite:///optuna.db`` keeps the study in that file, so that the
same command later continues it (``hydra_plugins/experiments_optuna`` hands it over: Hydra
takes sweepers only from its ``hydra_plugins`` package). Optuna's own SQL storage cannot
do it here: the sweeper pins Optuna 2.10, whose storage fails on SQLAlchemy 2, which
MLflow 3 requires. This module's storage is Optuna's in-memory storage, written to the
SQLite file (one row, the storage pickled) after every change, and read back when a
search starts. Only this project reads that file; it is not an Optuna RDB database.
"""

from __future__ import annotations

import pickle
import sqlite3
from pathlib import Path
from urllib.parse import unquote, urlparse

from optuna.storages import InMemoryStorage


def storage_for(storage):
    """``sqlite:///<file>`` as a ``SQLiteFileStorage``; anything else as Optuna takes it."""
    if isinstance(storage, str) and storage.startswith("sqlite:"):
        return SQLiteFileStorage(Path(unquote(urlparse(storage).path)))
    return storage


class SQLiteFileStorage(InMemoryStorage):
    """Optuna's in-memory storage, saved to a SQLite file after each change."""

    def __init__(self, path: Path) -> None:
        super().__init__()
        self._path = path
        with self._connect() as db:
            row = db.execute("SELECT state FROM storage WHERE id = 1").fetchone()
        if row is not None:
            self.__dict__.update(pickle.loads(row[0]))

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self._path)
        db.execute("CREATE TABLE IF NOT EXISTS storage (id INTEGER PRIMARY KEY, state BLOB)")
        return db

    def _save(self) -> None:
        state = {k: v for k, v in self.__dict__.items() if k not in ("_lock", "_path")}
        with self._connect() as db:  # one transaction: the file holds the old or the new state
            db.execute("INSERT OR REPLACE INTO storage VALUES (1, ?)", (pickle.dumps(state),))


def _saving(name: str):
    def method(self, *args, **kwargs):
        result = getattr(InMemoryStorage, name)(self, *args, **kwargs)
        self._save()
        return result

    method.__name__ = name
    return method


for _name in dir(InMemoryStorage):
    if _name.startswith(("create_", "delete_", "set_")):
        setattr(SQLiteFileStorage, _name, _saving(_name))
