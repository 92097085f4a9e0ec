"""The embedded registry runs only while it is used: its child exits after `idle_s` without a
request, and the next connection starts a new one; no caller sees an error across a stop.

One test runs the real MLflow child (ladle.runtimes.mlflow_gate); the others a stand-in
(tests/integration/registry_child.py) with the same gate, idle stop and inherited socket
around a tiny app, which starts in a fraction of a second instead of MLflow's seconds."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import time
from pathlib import Path

import httpx
import pytest

from ladle.runtimes.mlflow_tracking import TrackingServer

REPO = Path(__file__).resolve().parents[2]
STAND_IN = ("-m", "tests.integration.registry_child")
# a client that closes each connection after its answer (an idle keep-alive connection would
# hold the child's exit back for uvicorn's keep-alive time, 15 s)
NO_KEEPALIVE = httpx.Limits(max_keepalive_connections=0)


@pytest.fixture(autouse=True)
def _importable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYTHONPATH", str(REPO))   # the stand-in child imports tests.integration


async def until(cond, timeout: float = 60.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


def stopped(t: TrackingServer) -> bool:
    return t.proc is not None and t.proc.returncode is not None


def client(t: TrackingServer, **kw) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=t.url, headers={"authorization": f"Bearer {t.token}"}, timeout=60, **kw)


async def test_the_real_registry_stops_when_idle_and_the_next_request_starts_it_again(tmp_path):
    cache = Path(os.environ["LADLE_CACHE_DIR"])     # the session's (tests/conftest.py): migrated once
    t = TrackingServer(tmp_path / "mlflow", tmp_path / "mlflow.log", cache_dir=cache, idle_s=0.5)
    await t.start()
    try:
        async with client(t, limits=NO_KEEPALIVE) as c:
            r = await c.post("/api/2.0/mlflow/experiments/create", json={"name": "kept"})
            assert r.status_code == 200, r.text
            exp = r.json()["experiment_id"]
            first = t.proc
            log = tmp_path / "mlflow.log"
            await until(lambda: "MLflow registry stopped" in log.read_text(), what="the idle registry to stop")
            assert first.returncode == 0
            r = await c.get("/api/2.0/mlflow/experiments/get", params={"experiment_id": exp})
            assert r.status_code == 200, r.text
            assert r.json()["experiment"]["name"] == "kept"      # the same store, in a new child
            assert t.starts == 2 and t.proc is not first and t.proc.returncode is None
    finally:
        await t.stop()


async def test_concurrent_requests_spanning_many_stops_all_succeed(tmp_path):
    """Bursts of requests at random gaps around the idle time, from clients that keep their
    connections for a few bursts (as the server's do) and from one that keeps none: some
    arrive just as a child stops, or exits, or the next one starts."""
    t = TrackingServer(tmp_path / "m", tmp_path / "registry.log", idle_s=0.2, child=STAND_IN)
    await t.start()
    rng = random.Random(7)
    answers: list[int] = []
    pids: set[int] = set()

    async def one(c: httpx.AsyncClient) -> None:
        r = await c.get("/x", params={"hold": f"{rng.random() * 0.05:.3f}"})
        answers.append(r.status_code)
        pids.add(r.json()["pid"])

    try:
        async with client(t, limits=NO_KEEPALIVE) as fresh:
            deadline = time.monotonic() + 90
            while t.starts < 6 and time.monotonic() < deadline:
                async with client(t) as pooled:
                    for _ in range(rng.randint(1, 3)):
                        await asyncio.gather(*(one(rng.choice((pooled, fresh))) for _ in range(rng.randint(1, 12))))
                        await asyncio.sleep(rng.uniform(0.0, 0.3))
                await asyncio.sleep(rng.uniform(0.0, 0.6))
    finally:
        await t.stop()
    assert t.starts >= 6, "the children did not stop and start again often enough to test anything"
    assert answers and set(answers) == {200}
    assert len(pids) >= 5                          # answered by several children in turn
    assert (tmp_path / "registry.log").read_text().count("MLflow registry stopped") >= 5


async def test_an_open_connection_holds_the_child_and_the_next_request_after_it_closed_starts_another(tmp_path):
    """A client that keeps its connection (httpx's default) is answered on it however long
    it was idle (nothing is closed under it: uvicorn's keep-alive, 15 s, outlasts httpx's, 5 s);
    once it closes the connection the child stops, and the next request starts a new one."""
    t = TrackingServer(tmp_path / "m", tmp_path / "registry.log", idle_s=0.2, child=STAND_IN)
    await t.start()
    try:
        async with client(t) as c:
            pid = (await c.get("/x")).json()["pid"]
            idle_since = time.monotonic()
            await until(lambda: time.monotonic() - idle_since > 1.0, what="idle past idle_s")
            assert t.proc.returncode is None             # held by the open connection
            assert (await c.get("/x")).json()["pid"] == pid
        log = tmp_path / "registry.log"
        await until(lambda: "MLflow registry stopped" in log.read_text(), timeout=5,
                    what="the child to stop once the connection closed")
        async with client(t) as c:
            assert (await c.get("/x")).json()["pid"] != pid
            assert t.starts == 2
    finally:
        await t.stop()


async def test_a_killed_registry_is_started_again_by_the_next_connection(tmp_path):
    t = TrackingServer(tmp_path / "m", tmp_path / "registry.log", idle_s=0, child=STAND_IN)
    await t.start()
    try:
        async with client(t, limits=NO_KEEPALIVE) as c:
            pid = (await c.get("/x")).json()["pid"]
            os.kill(pid, signal.SIGKILL)
            log = tmp_path / "registry.log"
            await until(lambda: "exited with code -9" in log.read_text(), what="the killed child to be reaped")
            r = await c.get("/x")
            assert r.status_code == 200 and r.json()["pid"] != pid
            assert t.starts == 2
    finally:
        await t.stop()


async def test_a_registry_that_fails_at_start_is_tried_again_only_after_a_pause(tmp_path):
    t = TrackingServer(tmp_path / "m", tmp_path / "registry.log", child=(*STAND_IN, "--fail"))
    await t.start()
    try:
        async with client(t, limits=NO_KEEPALIVE) as c:
            with pytest.raises(httpx.TransportError):     # its connection is reset, not left waiting
                await c.get("/x")
            assert t.starts == 1
            t0 = time.monotonic()
            for _ in range(5):                            # within the pause: refused at once
                with pytest.raises(httpx.TransportError):
                    await c.get("/x")
            if time.monotonic() - t0 < 0.9:               # (a slow machine may have passed the pause)
                assert t.starts == 1
            await asyncio.sleep(max(0.0, t.refuse_until - time.monotonic()))   # the pause (1 s) ends
            with pytest.raises(httpx.TransportError):
                await c.get("/x")
            assert t.starts == 2
        assert "connections are refused for 2 s" in (tmp_path / "registry.log").read_text()
    finally:
        await t.stop()
