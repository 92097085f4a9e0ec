"""A new home's registry database, copied from an empty one MLflow has already migrated.

MLflow creates a SQLite tracking database by running its whole Alembic chain (dozens of
migrations: seconds, most of the embedded registry's first start). The result holds nothing
of the home it was made for (the tables, the Alembic head, the `Default` experiment whose
artifacts live at `mlflow-artifacts:/0`, the `default` workspace), so one is made per MLflow
version under ladle's cache directory (setting `cache_dir`) and copied
into each home whose database does not exist yet. The cached file is written once, under a
temporary name, and renamed into place: nobody writes it after, so a copy of it is consistent.
"""

from __future__ import annotations

import os
import secrets
import shutil
import sqlite3
import time
from pathlib import Path

# where experiment 0 keeps its artifacts when the server proxies artifacts (`--serve-artifacts`)
ARTIFACT_ROOT = "mlflow-artifacts:/"


def cached_db(cache: Path, version: str | None = None) -> Path:
    """The migrated empty database for this MLflow version (`version`, for tests), made if absent."""
    if version is None:
        import mlflow

        version = mlflow.__version__
    path = cache / "mlflow-db" / version / "mlflow.db"
    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{secrets.token_hex(6)}.db.tmp")
    try:
        _migrate(tmp)
        os.replace(tmp, path)   # atomic: a concurrent maker's rename of an equal file is harmless
    finally:
        tmp.unlink(missing_ok=True)
    return path


def _migrate(db: Path) -> None:
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

    store = SqlAlchemyStore(f"sqlite:///{db}", ARTIFACT_ROOT)
    store.engine.dispose()


def seed(db: Path, cache: Path) -> bool:
    """Copy the cached migrated database to `db` when `db` does not exist; True if copied.
    Any failure (a read-only cache, a full disk) leaves `db` absent, and MLflow then creates it
    itself as it always has."""
    if db.exists():
        return False
    try:
        src = cached_db(cache)
        db.parent.mkdir(parents=True, exist_ok=True)
        tmp = db.with_name(f".{db.name}.{secrets.token_hex(6)}.tmp")
        try:
            shutil.copyfile(src, tmp)
            _stamp(tmp)
            os.replace(tmp, db)
        finally:
            tmp.unlink(missing_ok=True)
        return True
    except Exception:   # noqa: BLE001 (MLflow's own creation of the database is the fallback)
        return False


def _stamp(db: Path) -> None:
    """The `Default` experiment is created now, not when the cached copy was made."""
    now = int(time.time() * 1000)
    with sqlite3.connect(db) as c:
        c.execute("UPDATE experiments SET creation_time = ?, last_update_time = ? WHERE experiment_id = 0",
                  (now, now))
    c.close()
