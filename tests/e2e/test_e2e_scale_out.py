"""Three real ladle servers on one PostgreSQL, one Redis and one shared tables location, as
behind a load balancer: the usage and payload rows of all three land in one Delta table each,
every answered request exactly once, also when a server is killed in the middle of the load
and started again; `export-metrics` on any server counts every server's requests; a
replica's logs are readable through a server that does not hold them; a change on one server
reaches the others at once (LISTEN/NOTIFY; their poll is set to a minute).

The endpoint is an external model on a fake OpenAI upstream (no replicas to build). Slow
tier: three server starts and a restart."""

from __future__ import annotations

import collections
import os
import secrets
import signal
import threading
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from cryptography.fernet import Fernet
from e2e_support import wait_for
from llm_fixtures import FakeUpstream
from prometheus_client.parser import text_string_to_metric_families

from ladle.testing.process import LadleProcess
from ladle.testing.redis_server import redis_server

ENDPOINT = "scale-chat"


def _upstream(path, headers, body):
    return 200, {}, {"id": "c1", "object": "chat.completion", "created": 1, "model": body["model"],
                     "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hi"},
                                  "finish_reason": "stop"}],
                     "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4}}


@pytest.fixture(scope="module")
def trio(server, postgres, tmp_path_factory):
    """Servers a, b, c: one database, Redis, secret key, admin token and tables location."""
    work = tmp_path_factory.mktemp("trio")
    with redis_server(work / "redis") as redis_url, FakeUpstream(_upstream) as upstream:
        env = {"LADLE_DATABASE_URL": postgres.new_database(), "LADLE_REDIS_URL": redis_url,
               "LADLE_SECRET_KEY": Fernet.generate_key().decode(), "LADLE_TABLES_ROOT": str(work / "tables"),
               "LADLE_MLFLOW_TRACKING_URI": server.url, "LADLE_MLFLOW_TRACKING_TOKEN": server.admin_token,
               "LADLE_FOUNDATION_ENDPOINTS": "false", "LADLE_RECONCILE_INTERVAL_S": "0.3",
               "LADLE_SYNC_INTERVAL_S": "60",     # the poll is the fallback: NOTIFY tells them
               "LADLE_TABLE_FLUSH_INTERVAL_S": "0.5", "LADLE_METRICS_SHARE_INTERVAL_S": "0.3",
               "LADLE_LOG_LEVEL": "info"}
        token = "dapi-trio-admin-" + secrets.token_hex(8)
        servers = [LadleProcess(work / f"home-{n}", token, extra_env=env) for n in "abc"]
        # b writes its tables only when asked (the usage API flushes): when it is killed, the
        # rows of everything it answered since are in its journal alone
        servers[1].extra_env = {**env, "LADLE_TABLE_FLUSH_INTERVAL_S": "3600", "LADLE_TABLE_FLUSH_ROWS": "100000"}
        with ThreadPoolExecutor(3) as pool:
            list(pool.map(lambda s: s.start(), servers))
        try:
            with servers[0].client() as c:
                r = c.post("/api/2.0/serving-endpoints", json={
                    "name": ENDPOINT,
                    "config": {"served_entities": [{"name": "gpt", "external_model": {
                        "name": "gpt-4o-mini", "provider": "openai", "task": "llm/v1/chat",
                        "openai_config": {"openai_api_base": upstream.url + "/v1",
                                          "openai_api_key_plaintext": "sk-trio"}}}]},
                    "ai_gateway": {"usage_tracking_config": {"enabled": True},
                                   "inference_table_config": {"enabled": True, "catalog_name": "main",
                                                              "schema_name": "trio", "table_name_prefix": "chat"}}})
                assert r.status_code == 200, r.text
            for s in servers:
                with s.client() as c:
                    wait_for(lambda: c.get(f"/api/2.0/serving-endpoints/{ENDPOINT}").json()
                             .get("state", {}).get("ready") == "READY", 30, what=f"{ENDPOINT} READY on {s.url}")
            yield servers, work / "tables"
        finally:
            for s in servers:
                s.stop()


class Load:
    """Chat requests, each with its own client_request_id, sent round-robin to servers."""

    def __init__(self) -> None:
        self.answered: list[str] = []     # 200s
        self.by_server: collections.Counter = collections.Counter()
        self.unanswered: list[str] = []   # the connection failed (a killed server)
        self.lock = threading.Lock()
        self.n = 0

    def send(self, srv: LadleProcess, n: int, stop: threading.Event | None = None) -> None:
        with httpx.Client(base_url=srv.url, headers=srv.headers, timeout=30) as c:
            for _ in range(n):
                if stop is not None and stop.is_set():
                    return
                with self.lock:
                    self.n += 1
                    cid = f"req-{self.n}"
                try:
                    r = c.post(f"/serving-endpoints/{ENDPOINT}/invocations",
                               json={"messages": [{"role": "user", "content": "hi"}], "client_request_id": cid})
                except httpx.TransportError:
                    with self.lock:
                        self.unanswered.append(cid)
                    return
                assert r.status_code == 200, r.text
                with self.lock:
                    self.answered.append(cid)
                    self.by_server[srv.url] += 1


def _ids(tables, *parts: str) -> collections.Counter:
    from deltalake import DeltaTable

    path = tables.joinpath(*parts)
    if not (path / "_delta_log").is_dir():
        return collections.Counter()
    t = DeltaTable(str(path)).to_pyarrow_table(columns=["client_request_id"])
    return collections.Counter(t.column("client_request_id").to_pylist())


def _request_count(srv: LadleProcess) -> float:
    with srv.client() as c:
        r = c.get(f"/api/2.0/serving-endpoints/{ENDPOINT}/metrics")
        assert r.status_code == 200, r.text
    return sum(s.value for f in text_string_to_metric_families(r.text) for s in f.samples
               if s.name == "request_count_total")


def _tables_hold(tables, load: Load) -> bool:
    for parts in (("system", "serving", "endpoint_usage"), ("main", "trio", "chat_payload")):
        ids = _ids(tables, *parts)
        if any(ids[c] != 1 for c in load.answered):
            return False
    return True


def _check_exactly_once(tables, load: Load) -> None:
    sent = set(load.answered) | set(load.unanswered)
    for parts in (("system", "serving", "endpoint_usage"), ("main", "trio", "chat_payload")):
        ids = _ids(tables, *parts)
        assert not [c for c, k in ids.items() if k > 1], f"duplicated rows in {parts}"
        assert set(ids) <= sent, f"rows of requests never sent in {parts}"
        assert all(ids[c] == 1 for c in load.answered), f"answered requests missing from {parts}"


def test_three_servers_write_one_table_each_exactly_once_even_through_a_kill(trio):
    servers, tables = trio
    load = Load()
    with ThreadPoolExecutor(6) as pool:        # two clients per server, at once
        list(pool.map(lambda s: load.send(s, 25), servers + servers))
    assert len(load.answered) == 150
    with servers[1].client() as c:              # b writes what it holds when asked for usage
        assert c.get("/api/2.0/ladle/usage", params={"group_by": "endpoint"}).status_code == 200
    wait_for(lambda: _tables_hold(tables, load), 30, what="150 rows in each table")
    _check_exactly_once(tables, load)
    # export-metrics on every server counts all three servers' requests
    for s in servers:
        wait_for(lambda: _request_count(s) == 150, 15, what=f"150 requests counted by {s.url}")

    # b is killed while all three take load, then started again
    victim = servers[1]
    stop = threading.Event()
    with ThreadPoolExecutor(6) as pool:
        futures = [pool.submit(load.send, s, 400, stop) for s in servers + servers]
        wait_for(lambda: len(load.answered) >= 150 + 60 and load.by_server[victim.url] >= 50 + 10, 30,
                 what="load under way")
        os.kill(victim.proc.pid, signal.SIGKILL)      # with rows answered since its last write
        wait_for(lambda: len(load.answered) >= 150 + 120, 30, what="the others keep serving")
        stop.set()
        for f in futures:
            f.result()
    victim.stop()
    victim.extra_env = servers[0].extra_env         # back: it drains its journal on its own
    victim.start()
    with ThreadPoolExecutor(3) as pool:        # the restarted server serves and writes again
        list(pool.map(lambda s: load.send(s, 10), servers))
    wait_for(lambda: _tables_hold(tables, load), 60, what=f"{len(load.answered)} answered requests' rows")
    _check_exactly_once(tables, load)
    print(f"{len(load.answered)} answered, {len(load.unanswered)} cut by the kill")
    # the restarted server's counts continue from what it had shared (never back to zero)
    assert _request_count(victim) >= 150


def test_replica_logs_are_readable_through_a_server_that_does_not_hold_them(trio):
    """Each server's disk gets a different line where a replica writes its output; every
    server answers with the same one: that of the server running the reconciler."""
    servers, _ = trio
    with servers[0].client() as c:
        eid = c.get(f"/api/2.0/serving-endpoints/{ENDPOINT}").json()["id"]
    markers = {}
    for s in servers:
        markers[s.url] = f"replica on {s.url} says {secrets.token_hex(4)}"
        log_dir = s.home / "logs" / eid / "gpt"
        log_dir.mkdir(parents=True, exist_ok=True)
        with open(log_dir / "server.log", "a") as f:
            f.write(markers[s.url] + "\n")

    def answers() -> list[str] | None:
        seen = []
        for s in servers:
            with s.client() as c:
                logs = c.get(f"/api/2.0/serving-endpoints/{ENDPOINT}/served-models/gpt/logs").json()["logs"]
            seen.append(next((u for u, m in markers.items() if m in logs), ""))
        return seen if len(set(seen)) == 1 else None

    (owner, *_) = wait_for(answers, 20, what="every server answering with the same server's logs")
    assert owner in markers


def test_a_change_on_one_server_reaches_the_others_at_once(trio):
    servers, _ = trio
    a, b, c = servers
    with a.client() as ca:
        r = ca.post("/api/2.0/token-management/on-behalf-of/tokens", json={"user_name": "erin"})
        assert r.status_code == 200, r.text
        tok, tok_id = r.json()["token_value"], r.json()["token_info"]["token_id"]
    for s in (b, c):
        with s.client(tok) as cs:
            assert cs.get("/api/2.0/serving-endpoints").status_code == 200
    with a.client() as ca:
        assert ca.delete(f"/api/2.0/token-management/tokens/{tok_id}").status_code == 200
    for s in (b, c):     # well within the minute their poll would take
        with s.client(tok) as cs:
            wait_for(lambda: cs.get("/api/2.0/serving-endpoints").status_code == 401, 5,
                     interval=0.05, what=f"the revoked token refused by {s.url}")
