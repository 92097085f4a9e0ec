"""The reconciler acts only while it holds the lease: a renewal the database cannot answer
stops it acting until a renewal succeeds (no acting on a lease it may have lost)."""

from __future__ import annotations

import pytest

from ladle.control.reconciler import Reconciler


class Leases:
    def __init__(self) -> None:
        self.answer: bool | Exception = True
        self.calls = 0

    def hold_lease(self, name, holder, ttl_ms, now_ms):
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
