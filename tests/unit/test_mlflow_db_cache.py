"""A new home's registry database copied from a migrated empty one, cached per MLflow version."""

from __future__ import annotations

import sqlite3
import time

import pytest

from ladle.entities import mlflow_db_cache as cache_mod
from ladle.entities.mlflow_db_cache import cached_db, seed


def _tables(db) -> set[str]:
    with sqlite3.connect(db) as c:
        rows = c.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()
    c.close()
    return {r[0] for r in rows}


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    """One migrated database for the module (MLflow's migrations run once)."""
    d = tmp_path_factory.mktemp("ladle-cache")
    cached_db(d)
    return d


def test_new_home_gets_a_database_mlflow_accepts(cache, tmp_path):
    import mlflow
    from mlflow.store.model_registry.sqlalchemy_store import SqlAlchemyStore as RegistryStore
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

    db = tmp_path / "home" / "mlflow" / "mlflow.db"
    before = int(time.time() * 1000)
    assert seed(db, cache) is True
    assert {"experiments", "runs", "registered_models", "model_versions", "alembic_version"} <= _tables(db)
    uri = f"sqlite:///{db}"
    tracking = SqlAlchemyStore(uri, cache_mod.ARTIFACT_ROOT)
    default = tracking.get_experiment("0")
    assert default.name == "Default" and default.artifact_location == "mlflow-artifacts:/0"
    assert default.creation_time >= before          # stamped at the copy, not at the cache's making
    assert tracking.create_experiment("e1")
    registry = RegistryStore(uri)
    assert registry.create_registered_model("m1").name == "m1"
    tracking.engine.dispose()
    registry.engine.dispose()
    assert (cache / "mlflow-db" / mlflow.__version__ / "mlflow.db").exists()


def test_second_home_reuses_the_cache_without_migrating(cache, tmp_path, monkeypatch):
    def no_migrations(db):
        raise AssertionError("migrated again")

    monkeypatch.setattr(cache_mod, "_migrate", no_migrations)
    src = cached_db(cache)
    stat = src.stat()
    for home in ("a", "b"):
        assert seed(tmp_path / home / "mlflow.db", cache) is True
        assert "registered_models" in _tables(tmp_path / home / "mlflow.db")
    assert src.stat().st_mtime_ns == stat.st_mtime_ns     # the cached file itself is never written


def test_another_mlflow_version_gets_its_own_cache(cache, tmp_path, monkeypatch):
    made = []
    monkeypatch.setattr(cache_mod, "_migrate", lambda db: (made.append(db), db.write_bytes(b"x")))
    other = cached_db(cache, version="0.0.0-test")
    assert other == cache / "mlflow-db" / "0.0.0-test" / "mlflow.db" and other.read_bytes() == b"x"
    assert len(made) == 1
    assert cached_db(cache, version="0.0.0-test") == other and len(made) == 1   # reused after
    assert sorted(p.name for p in other.parent.iterdir()) == ["mlflow.db"]      # no temp left


def test_existing_database_is_left_alone(cache, tmp_path):
    db = tmp_path / "mlflow.db"
    db.write_bytes(b"mine")
    assert seed(db, cache) is False
    assert db.read_bytes() == b"mine"


def test_unusable_cache_leaves_the_database_to_mlflow(tmp_path):
    blocked = tmp_path / "cache"
    blocked.write_text("a file where the cache directory should be")
    db = tmp_path / "home" / "mlflow.db"
    assert seed(db, blocked) is False
    assert not (tmp_path / "home").exists()
