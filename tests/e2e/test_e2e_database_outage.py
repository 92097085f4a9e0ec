"""A database host that accepts connections and never answers: ladle on a real PostgreSQL
behind a TCP proxy (ladle.testing.tcp_blackhole) that is switched silent. While it is, a READY
model endpoint and an external-model endpoint keep answering at their usual speed, even while
control-plane calls and unknown tokens are waiting on the silent database; the known token
keeps working, unknown tokens get 503 TEMPORARILY_UNAVAILABLE in the API's error shape. When
the database answers again, a control-plane write succeeds and unknown tokens are 401 again.
The server's database timeouts are set to 1 s, so each wait on the silent host ends in ~2-4 s."""

from __future__ import annotations

import secrets
import threading
import time

import httpx
import pytest
from e2e_support import COLUMNS, LadleServer, create_endpoint, entity, wait_for
from llm_fixtures import FakeUpstream

from ladle.testing.tcp_blackhole import TcpBlackhole

ROWS = {"dataframe_split": {"columns": COLUMNS, "data": [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]]}}
CHAT = {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 5}


def _upstream(path, headers, body):
    return 200, {}, {"id": "c1", "object": "chat.completion", "created": 1, "model": body["model"],
                     "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hello!"},
                                  "finish_reason": "stop"}],
                     "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}}


@pytest.fixture(scope="module")
def outage(server, postgres, iris_endpoint, tmp_path_factory):
    """A ladle server whose PostgreSQL is reached through a switchable silent proxy, serving
    `iris-db` (the registered iris model) and `chat-db` (an external model on a fake upstream).
    It borrows the session server's model and environment caches (`iris` already serves the
    same version there), so its replica starts without downloading or building anything."""
    work = tmp_path_factory.mktemp("outage")
    (work / "home").mkdir()
    for cache in ("models", "envs"):
        (work / "home" / cache).symlink_to(server.home / cache, target_is_directory=True)
    with TcpBlackhole(postgres.socket_path) as proxy, FakeUpstream(_upstream) as upstream:
        env = {"LADLE_DATABASE_URL": postgres.via_tcp(postgres.new_database(), proxy.port),
               "LADLE_MLFLOW_TRACKING_URI": server.url, "LADLE_MLFLOW_TRACKING_TOKEN": server.admin_token,
               "LADLE_FOUNDATION_ENDPOINTS": "false", "LADLE_SYNC_INTERVAL_S": "0.3",
               "LADLE_RECONCILE_INTERVAL_S": "0.3", "LADLE_DB_CONNECT_TIMEOUT_S": "1",
               "LADLE_DB_STATEMENT_TIMEOUT_S": "1", "LADLE_DB_POOL_TIMEOUT_S": "1"}
        srv = LadleServer(work / "home", "dapi-outage-" + secrets.token_hex(8), extra_env=env)
        srv.start()
        try:
            with srv.client(timeout=60) as c:
                create_endpoint(c, {"name": "iris-db", "config": {"served_entities": [entity("1")]}})
                create_endpoint(c, {"name": "chat-db", "config": {"served_entities": [{
                    "name": "gpt", "external_model": {
                        "name": "gpt-4o-mini", "provider": "openai", "task": "llm/v1/chat",
                        "openai_config": {"openai_api_key_plaintext": "sk-outage",
                                          "openai_api_base": upstream.url + "/v1"}}}]}})
            yield srv, proxy
        finally:
            proxy.answer()
            srv.stop()


def _data_plane(c: httpx.Client) -> float:
    """Query both endpoints once; the slower answer's seconds."""
    t0 = time.perf_counter()
    r = c.post("/serving-endpoints/iris-db/invocations", json=ROWS)
    assert r.status_code == 200 and len(r.json()["predictions"]) == 2, r.text
    t1 = time.perf_counter()
    r = c.post("/serving-endpoints/chat-db/invocations", json=CHAT)
    assert r.status_code == 200 and r.json()["choices"][0]["message"]["content"] == "Hello!", r.text
    return max(t1 - t0, time.perf_counter() - t1)


def test_the_data_plane_serves_through_a_silent_database_and_the_server_recovers(outage):
    srv, proxy = outage
    with srv.client(timeout=30) as c:
        for _ in range(3):
            _data_plane(c)                                        # warm: READY and answering
        proxy.silence()
        # Callers stuck on the silent database, alongside the data plane: control-plane reads
        # and lookups of tokens this server has never seen.
        stuck: list[httpx.Response] = []

        def wait_on_the_database() -> None:
            with srv.client(timeout=30) as cc, srv.client("dapi-unknown-" + secrets.token_hex(16), 30) as cu:
                stuck.append(cc.get("/api/2.0/serving-endpoints"))
                stuck.append(cu.get("/api/2.0/serving-endpoints"))
        waiters = [threading.Thread(target=wait_on_the_database) for _ in range(4)]
        for t in waiters:
            t.start()
        slowest, n, t_end = 0.0, 0, time.monotonic() + 5.0
        while time.monotonic() < t_end:
            slowest = max(slowest, _data_plane(c))
            n += 1
        for t in waiters:
            t.join(30)
        assert len(stuck) == 8 and all(r.status_code == 503 for r in stuck), [r.text for r in stuck]
        assert all(r.json()["error_code"] == "TEMPORARILY_UNAVAILABLE" for r in stuck)
        # a blocked event loop would hold requests for the database's 2 s bound or more
        assert n >= 20 and slowest < 1.0, (n, slowest)

        with srv.client("dapi-unknown-" + secrets.token_hex(16), 30) as cu:
            r = cu.post("/serving-endpoints/iris-db/invocations", json=ROWS)
        assert r.status_code == 503 and r.json()["error_code"] == "TEMPORARILY_UNAVAILABLE", r.text
        assert r.headers["retry-after"] == "1"
        _data_plane(c)                                            # the known token still works

        proxy.answer()

        def tagged() -> bool:
            r = c.patch("/api/2.0/serving-endpoints/iris-db/tags",
                        json={"add_tags": [{"key": "after", "value": "outage"}]})
            return r.status_code == 200
        wait_for(tagged, 30, what="a control-plane write after the outage")
        assert {"key": "after", "value": "outage"} in c.get("/api/2.0/serving-endpoints/iris-db").json()["tags"]
        with srv.client("dapi-unknown-" + secrets.token_hex(16), 30) as cu:
            assert cu.get("/api/2.0/serving-endpoints").status_code == 401
        _data_plane(c)
