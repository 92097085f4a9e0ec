"""Gateway workers without processes: the link (gateway/feed.py), a worker's relays
(gateway/follower.py) joined by a socket pair to the server's side (gateway/workers.py)."""

from __future__ import annotations

import asyncio
import socket
from types import SimpleNamespace

import pytest

from ladle.gateway.feed import Link, LinkClosed
from ladle.gateway.follower import FollowerBackend, Relay, RelayHub, RelayWriter, RemoteLimiter
from ladle.gateway.ratelimit import Bucket, MemoryLimiter, Need
from ladle.gateway.workers import GatewayWorkers, _Worker
from ladle.schemas.replicas import GroupObs, GroupState
from ladle.telemetry.metrics import MetricsHub
from ladle.telemetry.tables import TableRef


async def _pair(left, right) -> tuple[Link, Link]:
    a, b = socket.socketpair()
    a.setblocking(False)
    b.setblocking(False)
    return await Link.open(a, left), await Link.open(b, right)


async def test_questions_are_answered_and_errors_travel_as_raised():
    def server(kind, payload):
        if kind == "double":
            return payload * 2
        if kind == "later":
            async def later():
                await asyncio.sleep(0)
                return payload + 1
            return later()
        raise ValueError(f"no {kind}")

    worker, srv = await _pair(lambda k, p: None, server)
    assert await worker.ask("double", 21, timeout=5) == 42
    assert await worker.ask("later", 1, timeout=5) == 2
    with pytest.raises(ValueError, match="no what"):
        await worker.ask("what", None, timeout=5)
    await srv.close()
    await asyncio.wait_for(worker.closed.wait(), 5)
    with pytest.raises(LinkClosed):
        await worker.ask("double", 1, timeout=5)


class _Backend:
    def __init__(self) -> None:
        self.touched: list[str] = []
        self.woken: list[str] = []
        self.obs = {"g1": GroupObs(GroupState.READY, "", 1, 1, in_flight=1, last_used=0.0)}

    def observe(self):
        return dict(self.obs)

    def group(self, key):
        if key != "g1":
            return None
        return SimpleNamespace(touch=lambda: self.touched.append(key), wake=lambda: self.woken.append(key),
                               replicas=lambda: [], state=GroupState.READY)


class _Rows:
    """The server's row writer (a `RowWriter`): what it was offered."""

    def __init__(self) -> None:
        self.offered: list[tuple[TableRef, dict, int]] = []
        self.dropped: dict[str, int] = {}

    def offer(self, table: TableRef, row: dict, size: int = 256) -> bool:
        self.offered.append((table, row, size))
        return True


def _server(backend: _Backend, limiter=None) -> tuple[GatewayWorkers, MetricsHub, _Rows]:
    hub, tables = MetricsHub(), _Rows()
    gw = SimpleNamespace(routes={}, not_ready={}, on_miss=None)
    workers = GatewayWorkers(1, {}, None, None, gw, hub, tables, limiter or MemoryLimiter(), backend)  # type: ignore[arg-type]
    return workers, hub, tables


async def _joined(workers: GatewayWorkers) -> tuple[Link, Relay]:
    w = workers.workers[0]
    holder: dict = {}
    link, server_end = await _pair(lambda k, p: holder["h"](k, p),
                                   lambda k, p: workers._handle(w, k, p))
    w.link = server_end
    w.ready.set()       # it said it serves
    relay = Relay(link)

    def handle(kind, payload):   # what app_worker answers
        if kind == "drain":
            relay.flush()
            return True
        return None
    holder["h"] = handle
    return link, relay


async def test_a_workers_counts_rows_and_replica_use_reach_the_server_by_the_drain():
    backend = _Backend()
    workers, hub, tables = _server(backend)
    link, relay = await _joined(workers)
    m = RelayHub(relay).for_endpoint("ep1")
    for status in (200, 200, 429):
        m.observe("a", status, 3.0)
    m.rate_limited.labels("a").inc()
    RelayWriter(relay).offer(TableRef("main.gw.usage", ()), {"n": 1}, 10)
    relay.touch("g1")
    relay.busy("g1", 2, 1)
    await workers.drain()       # the server asks; the worker sends what it queued first
    text = hub.for_endpoint("ep1").registry
    assert text.get_sample_value("request_count_total", {"served_entity": "a"}) == 3
    assert text.get_sample_value("request_4xx_count_total", {"served_entity": "a"}) == 1
    assert text.get_sample_value("request_rate_limited_count_total", {"served_entity": "a"}) == 1
    assert tables.offered == [(TableRef("main.gw.usage", ()), {"n": 1}, 10)]
    assert backend.touched == ["g1"]
    obs = workers.observe()["g1"]          # the autoscaler sees the worker's requests too
    assert (obs.in_flight, obs.waiting) == (1 + 2, 1)
    await link.close()


async def test_rate_limits_asked_of_the_server_are_exact_across_workers():
    workers, _, _ = _server(_Backend())
    workers.workers.append(_Worker(1))
    limiters = []
    for w in workers.workers:
        link, server_end = await _pair(lambda k, p: None, lambda k, p, w=w: workers._handle(w, k, p))
        w.link = server_end
        limiters.append(RemoteLimiter(link))
    need = [Need((Bucket("user:u", 5),), 1, "u")]
    got = await asyncio.gather(*(limiters[i % 2].acquire(need) for i in range(12)))
    assert sum(1 for wait, _ in got if wait == 0.0) == 5


async def test_replica_groups_pushed_by_the_server_wake_through_it():
    backend = _Backend()
    workers, _, _ = _server(backend)
    link, relay = await _joined(workers)
    follower = FollowerBackend(relay, link)
    follower.update({"g1": ((), False)})
    g = follower.group("g1")
    assert g is not None and g.replicas() == [] and follower.group("other") is None
    g.wake()      # no replica here: the server is asked to wake the group
    await workers.drain()
    assert backend.woken == ["g1"]
    follower.update({"g1": ((), True)})
    assert await g.wait_ready(5) is False       # failed: no waiting out the timeout
    follower.update({})
    assert follower.group("g1") is None
    await link.close()


async def test_the_barrier_drains_before_reads_and_reloads_before_a_writes_answer():
    workers, _, _ = _server(_Backend())
    calls: list[str] = []

    async def drain():
        calls.append("drain")

    async def reload():
        calls.append("reload")

    workers.drain, workers.reload = drain, reload   # type: ignore[method-assign]

    async def app(scope, receive, send):
        calls.append("app")
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    async def send(msg):
        if msg["type"] == "http.response.start":
            calls.append("answer")

    wrapped = workers.barrier(app)
    for method, path, expected in [
        ("GET", "/api/2.0/serving-endpoints/x/metrics", ["drain", "app", "answer"]),
        ("POST", "/api/2.0/permissions/serving-endpoints/1", ["drain", "app", "reload", "answer"]),
        ("POST", "/serving-endpoints/x/invocations", ["app", "answer"]),
        ("GET", "/health", ["app", "answer"]),
    ]:
        calls.clear()
        await wrapped({"type": "http", "method": method, "path": path}, None, send)
        assert calls == expected, (method, path)
