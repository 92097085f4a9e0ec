"""The reconciler acts only while it holds the lease: a renewal the database cannot answer
stops it acting until a renewal succeeds (no acting on a lease it may have lost). The lease's
expiry is the database's clock: servers whose clocks disagree still see one holder."""

from __future__ import annotations

import time

import pytest

from ladle.control.reconciler import Reconciler
from ladle.control.store import Store


class Leases:
    def __init__(self) -> None:
        self.answer: bool | Exception = True
        self.calls = 0

    def hold_lease(self, name, holder, ttl_ms):
        self.calls += 1
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer


def test_a_failed_renewal_is_not_leadership_until_renewed(monkeypatch):
    store = Leases()
    r = Reconciler(store, backend=None, publish=lambda routes: None, logs_dir=None, idle_s=60,
                   interval_s=1.0, lease_s=9.0)
    clock = [1000.0]
    monkeypatch.setattr("ladle.control.reconciler.time.monotonic", lambda: clock[0])
    assert r._lead() and store.calls == 1
    clock[0] += 1.0
    assert r._lead() and store.calls == 1          # renewed 1 s ago: no database call
    clock[0] += 3.0                                # a third of the lease: renew
    store.answer = ConnectionError("database away")
    with pytest.raises(ConnectionError):
        r._lead()
    assert not r.leading
    clock[0] += 0.5
    with pytest.raises(ConnectionError):           # asks again, never answers from a cache
        r._lead()
    store.answer = False                           # back, but another server took the lease
    assert not r._lead()
    store.answer = True
    assert r._lead() and r.leading


def test_a_server_whose_clock_runs_ahead_does_not_take_a_live_lease(tmp_path, monkeypatch):
    """Server b's clock is an hour ahead of a's: a's lease, renewed a moment ago, is still
    a's (b's clock says it lapsed long ago, the database's does not); and a's own renewal is
    untouched by a clock an hour behind."""
    url = f"sqlite:///{tmp_path}/ladle.db"
    a, b = Store(url), Store(url)
    real = time.time
    assert a.hold_lease("reconciler", "server-a", 10_000)
    monkeypatch.setattr(time, "time", lambda: real() + 3600)      # b's view of the time
    assert not b.hold_lease("reconciler", "server-b", 10_000)
    monkeypatch.setattr(time, "time", lambda: real() - 3600)      # a's clock far behind
    assert a.hold_lease("reconciler", "server-a", 10_000)
    assert not b.hold_lease("reconciler", "server-b", 10_000)
    a.release_lease("reconciler", "server-a")
    assert b.hold_lease("reconciler", "server-b", 10_000)


def test_a_lease_lapses_by_the_database_clock(tmp_path):
    url = f"sqlite:///{tmp_path}/ladle.db"
    a, b = Store(url), Store(url)
    assert a.hold_lease("reconciler", "server-a", 200)
    assert not b.hold_lease("reconciler", "server-b", 200)
    deadline = time.monotonic() + 10
    while not b.hold_lease("reconciler", "server-b", 10_000):     # a stopped renewing
        assert time.monotonic() < deadline, "the lease never lapsed"
        time.sleep(0.05)
    assert not a.hold_lease("reconciler", "server-a", 10_000)
