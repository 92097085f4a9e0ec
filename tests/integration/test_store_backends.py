"""The store on SQLite and on a real PostgreSQL: the same behaviour on both, plus what
sharing one database between servers needs (stale saves refused, one lease holder, a state
version every write moves)."""

from __future__ import annotations

import time
import uuid

import pytest

from ladle.control.store import EndpointRecord, StaleRecord, Store, TokenRecord


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/ladle.db"
    return request.getfixturevalue("postgres").new_database()


def _endpoint(name: str = "ep") -> EndpointRecord:
    now = int(time.time() * 1000)          # milliseconds since 1970: past 32 bits
    return EndpointRecord(id=uuid.uuid4().hex, name=name, creator="admin", created_ms=now,
                          updated_ms=now, meta={"tags": []}, pending={"served_entities": []},
                          config_update="IN_PROGRESS", next_version=2)


def test_endpoint_round_trip_and_names_unique(url):
    store = Store(url)
    rec = _endpoint()
    assert store.insert_endpoint(rec)
    got = store.get_endpoint("ep")
    assert got.created_ms == rec.created_ms > 2**31 and got.pending == {"served_entities": []}
    assert not store.insert_endpoint(_endpoint())      # same name: refused, nothing written
    assert [r.id for r in store.list_endpoints()] == [rec.id]


def test_a_stale_save_changes_nothing(url):
    a, b = Store(url), Store(url)          # two servers on one database
    a.insert_endpoint(_endpoint())
    mine, theirs = a.get_endpoint("ep"), b.get_endpoint("ep")
    theirs.meta["description"] = "theirs"
    b.save_endpoint(theirs)
    mine.meta["description"] = "mine"
    with pytest.raises(StaleRecord):
        a.save_endpoint(mine)
    assert a.get_endpoint("ep").meta["description"] == "theirs"
    again = a.get_endpoint("ep")
    again.meta["description"] = "mine, after reading again"
    a.save_endpoint(again)
    assert b.get_endpoint("ep").meta["description"] == "mine, after reading again"


def test_every_write_moves_the_version_and_reads_do_not(url):
    a, b = Store(url), Store(url)
    v0 = b.version()
    a.insert_endpoint(_endpoint())
    v1 = b.version()
    assert v1 > v0
    a.list_endpoints()
    a.get_endpoint("ep")
    assert b.version() == v1
    now = int(time.time() * 1000)
    a.insert_token(TokenRecord(id="t1", hash="h" * 64, principal_type="user", principal="bob",
                               is_admin=False, comment=None, created_ms=now, expiry_ms=now + 10**12,
                               created_by="admin"))
    assert b.version() > v1 and b.token_by_hash("h" * 64).expiry_ms == now + 10**12
    v2 = b.version()
    a.insert_scope("llm", "admin")
    a.put_secret("llm", "k", "sealed", now)
    assert b.version() == v2 + 2 and b.secrets_of("llm") == {"k": ("sealed", now)}


def test_one_lease_holder_until_it_lapses_or_is_released(url):
    """Expiry by the database's clock (hold_lease takes no time from the caller)."""
    a, b = Store(url), Store(url)
    assert a.hold_lease("reconciler", "server-a", 10_000)
    assert not b.hold_lease("reconciler", "server-b", 10_000)
    assert a.hold_lease("reconciler", "server-a", 300)             # renewed, expiring soon
    assert not b.hold_lease("reconciler", "server-b", 10_000)
    deadline = time.monotonic() + 10
    while not b.hold_lease("reconciler", "server-b", 10_000):       # lapsed
        assert time.monotonic() < deadline, "a's lease never lapsed"
        time.sleep(0.05)
    assert not a.hold_lease("reconciler", "server-a", 10_000)
    b.release_lease("reconciler", "server-b")
    assert a.hold_lease("reconciler", "server-a", 10_000)


def test_a_database_made_by_an_earlier_ladle_gains_the_revision_column(tmp_path):
    import sqlite3

    db = tmp_path / "ladle.db"
    con = sqlite3.connect(db)
    con.execute("CREATE TABLE endpoints (id VARCHAR(32) PRIMARY KEY, name VARCHAR(64) UNIQUE NOT NULL, "
                "creator VARCHAR(256) NOT NULL, created_ms INTEGER NOT NULL, updated_ms INTEGER NOT NULL, "
                "meta TEXT NOT NULL, active TEXT, pending TEXT, config_update VARCHAR(32) NOT NULL, "
                "next_version INTEGER NOT NULL)")
    con.execute("INSERT INTO endpoints VALUES ('e1', 'old', 'admin', 1, 1, '{}', NULL, NULL, 'NOT_UPDATING', 2)")
    con.commit()
    con.close()
    store = Store(f"sqlite:///{db}")
    rec = store.get_endpoint("old")
    assert rec.revision == 0
    rec.meta["description"] = "kept"
    store.save_endpoint(rec)
    assert store.get_endpoint("old").meta == {"description": "kept"}


def test_a_database_that_goes_away_is_a_503_and_the_server_recovers(postgres, tmp_path):
    """The API on PostgreSQL: while the database cannot be reached, control-plane calls answer
    503 in the API's error shape (nothing changed) instead of a 500 with a traceback; once it
    is back, the same call succeeds. (The connection is cut by pointing the server's engine
    at a socket nobody listens on, then back.)"""
    from sqlalchemy import create_engine
    from starlette.testclient import TestClient

    from ladle.app import build_app
    from ladle.config import Settings
    from ladle.runtimes.fake import FakeBackend
    from tests.integration.conftest import ADMIN, FakeRegistry

    settings = Settings(home=tmp_path, admin_token=ADMIN, database_url=postgres.new_database(),
                        reconcile_interval_s=0.05)
    app = build_app(settings, backend=FakeBackend(), registry=FakeRegistry({"m": {"1"}}))
    with TestClient(app, headers={"Authorization": f"Bearer {ADMIN}"}) as c:
        store = app.app.state.services.endpoints.store
        good = store.engine
        store.engine = create_engine(f"postgresql+psycopg://postgres@/x?host={tmp_path}/nobody")
        body = {"name": "ep", "config": {"served_entities": [{"entity_name": "m", "entity_version": "1"}]}}
        r = c.post("/api/2.0/serving-endpoints", json=body)
        assert r.status_code == 503 and r.json()["error_code"] == "TEMPORARILY_UNAVAILABLE"
        assert r.headers["retry-after"] == "1" and "nothing was changed" in r.json()["message"]
        assert c.get("/api/2.0/serving-endpoints").status_code == 503
        store.engine = good
        assert c.get("/api/2.0/serving-endpoints").json().get("endpoints", []) == []   # nothing was made
        assert c.post("/api/2.0/serving-endpoints", json=body).status_code == 200


def test_a_database_host_that_never_answers_fails_calls_within_the_bounds_and_then_recovers(postgres):
    """PostgreSQL behind a proxy that accepts connections and never answers: a store call
    fails (OperationalError) within the configured bounds instead of hanging on a pooled
    connection or a new one; once the host answers again the same store works."""
    import asyncio

    from sqlalchemy.exc import OperationalError

    from ladle.control.store import DatabaseBusy, DbTimeouts
    from ladle.testing.tcp_blackhole import TcpBlackhole

    with TcpBlackhole(postgres.socket_path) as proxy:
        store = Store(postgres.via_tcp(postgres.new_database(), proxy.port), DbTimeouts(1, 1, 1))
        v = store.version()                        # a pooled connection exists
        proxy.silence()
        t0 = time.monotonic()
        with pytest.raises(OperationalError):
            store.version()                        # the pooled one is silent, so is a new one
        assert time.monotonic() - t0 < 6           # 2 s answer bound + 2 s connect (libpq's minimum)

        async def flood() -> list[BaseException | int]:
            return await asyncio.gather(*(store.call(store.version) for _ in range(8)), return_exceptions=True)
        store._max_waiting = 3                     # (30 threads x 4 by default)
        got = asyncio.run(flood())                 # more callers than may wait: the rest fail at once
        assert sum(isinstance(g, DatabaseBusy) for g in got) == 5
        assert all(isinstance(g, (OperationalError, DatabaseBusy)) for g in got)
        proxy.answer()
        assert store.version() == v
        store.close()
