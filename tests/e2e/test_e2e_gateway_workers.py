"""The request path in several processes (LADLE_GATEWAY_WORKERS=2: the server and one gateway
worker accept on the same socket): what a user sees stays as with one process.

Which process accepts a connection is the kernel's choice; a test that needs one of them
pauses the other (SIGSTOP, then SIGCONT: both are processes this module started), so every
new connection meanwhile goes to the one left running. The endpoint is an external model in
front of a fake OpenAI upstream in this process (no model environment to build)."""

from __future__ import annotations

import os
import secrets
import signal
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Iterator

import httpx
import psutil
import pytest

from e2e_support import client, gateway_workers, only_serving, wait_for
from gateway_fixtures import burst, metric_total, user_token
from ladle.testing.process import LadleProcess
from llm_fixtures import FakeUpstream


def _answer(path: str, headers: dict, body: dict) -> tuple[int, dict, object]:
    return 200, {}, {"id": "c1", "object": "chat.completion", "model": "fake", "choices": [
        {"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": "pong"}}],
        "usage": {"prompt_tokens": 2, "completion_tokens": 1, "total_tokens": 3}}


@pytest.fixture(scope="module")
def upstream() -> Iterator[FakeUpstream]:
    with FakeUpstream(_answer) as up:
        yield up


@pytest.fixture(scope="module")
def multi(tmp_path_factory) -> Iterator[LadleProcess]:
    srv = LadleProcess(tmp_path_factory.mktemp("ladle-workers"), "dapi-workers-" + secrets.token_hex(8),
                       extra_env={"LADLE_GATEWAY_WORKERS": "2"})
    srv.start()
    yield srv
    srv.stop()


def _chat_endpoint(http: httpx.Client, upstream: FakeUpstream, name: str, gateway: dict | None = None,
                   users_may_query: bool = True) -> None:
    ext = {"provider": "openai", "name": "fake", "task": "llm/v1/chat",
           "openai_config": {"openai_api_base": upstream.url + "/v1", "openai_api_key_plaintext": "sk-test"}}
    body = {"name": name, "config": {"served_entities": [{"name": "fake-chat", "external_model": ext}]}}
    if gateway:
        body["ai_gateway"] = gateway
    r = http.post("/api/2.0/serving-endpoints", json=body)
    assert r.status_code == 200, r.text
    wait_for(lambda: http.get(f"/api/2.0/serving-endpoints/{name}").json()["state"]["ready"] == "READY",
             60, 0.05, what=f"{name} READY")
    if users_may_query:
        eid = http.get(f"/api/2.0/serving-endpoints/{name}").json()["id"]
        r = http.patch(f"/api/2.0/permissions/serving-endpoints/{eid}", json={"access_control_list": [
            {"group_name": "users", "permission_level": "CAN_QUERY"}]})
        assert r.status_code == 200, r.text


CHAT = {"messages": [{"role": "user", "content": "ping"}]}


def _invoke_fresh(srv: LadleProcess, name: str, token: str | None = None) -> httpx.Response:
    """One request on a new connection (so the kernel hands it to a process anew)."""
    with client(srv, token, timeout=10) as c:
        return c.post(f"/serving-endpoints/{name}/invocations", json=CHAT)


def test_server_runs_one_gateway_worker(multi):
    assert len(gateway_workers(multi)) == 1


def test_a_route_is_answered_by_every_process_right_after_ready(multi, upstream):
    with client(multi) as admin:
        _chat_endpoint(admin, upstream, "fresh")
    # at once, many new connections: both processes answer some of them (each is 200)
    statuses = Counter(_invoke_fresh(multi, "fresh").status_code for _ in range(16))
    assert statuses == {200: 16}
    with only_serving("worker", multi):
        r = _invoke_fresh(multi, "fresh")
    assert r.status_code == 200 and r.json()["choices"][0]["message"]["content"] == "pong", r.text
    with only_serving("server", multi):
        r = _invoke_fresh(multi, "fresh")
    assert r.status_code == 200, r.text


def test_metrics_and_usage_count_the_requests_of_every_process(multi, upstream):
    with client(multi) as admin:
        _chat_endpoint(admin, upstream, "counted", {"usage_tracking_config": {"enabled": True}})
        token = user_token(admin, "counter-user")
        with only_serving("worker", multi):
            assert [_invoke_fresh(multi, "counted", token).status_code for _ in range(3)] == [200] * 3
        with only_serving("server", multi):
            assert [_invoke_fresh(multi, "counted", token).status_code for _ in range(2)] == [200] * 2
        # the scrape is answered by whichever process: every request before it is counted
        assert metric_total(admin, "request_count_total", "counted") == 5
        r = admin.get("/api/2.0/ladle/usage", params={"group_by": "requester", "endpoint": "counted"})
        assert r.status_code == 200, r.text
        rows = {row["requester"]: row for row in r.json()["rows"]}
        assert rows["counter-user"]["request_count"] == 5
        assert rows["counter-user"]["output_token_count"] == 5


def test_rate_limits_stay_exact_across_processes(multi, upstream):
    limit = 15
    with client(multi) as admin:
        _chat_endpoint(admin, upstream, "limited", {"rate_limits": [
            {"calls": limit, "key": "user", "principal": "burster", "renewal_period": "minute"}]})
        token = user_token(admin, "burster")
        _, results = burst(multi, token, "limited", processes=3, per_process=15)
        statuses = Counter(r["status"] for r in results)
        assert statuses == {200: limit, 429: 45 - limit}, statuses
        assert metric_total(admin, "request_rate_limited_count_total", "limited") == 45 - limit


def test_a_token_and_a_grant_made_a_moment_before_hold_on_every_process(multi, upstream):
    with client(multi) as admin:
        _chat_endpoint(admin, upstream, "tokened", users_may_query=False)
        r = admin.post("/api/2.0/token-management/on-behalf-of/tokens", json={"user_name": "newcomer"})
        assert r.status_code == 200, r.text
        token, token_id = r.json()["token_value"], r.json()["token_info"]["token_id"]
        eid = admin.get("/api/2.0/serving-endpoints/tokened").json()["id"]
        with only_serving("worker", multi):     # no grant yet
            assert _invoke_fresh(multi, "tokened", token).status_code == 403
        r = admin.put(f"/api/2.0/permissions/serving-endpoints/{eid}", json={"access_control_list": [
            {"user_name": "newcomer", "permission_level": "CAN_QUERY"}]})
        assert r.status_code == 200, r.text
        with only_serving("worker", multi):
            assert _invoke_fresh(multi, "tokened", token).status_code == 200
        assert admin.delete(f"/api/2.0/token-management/tokens/{token_id}").status_code == 200
        with only_serving("worker", multi):
            assert _invoke_fresh(multi, "tokened", token).status_code == 401


def test_control_plane_requests_a_worker_accepts_reach_the_server(multi, upstream):
    """The worker relays them to the server: a create accepted by the worker is served."""
    worker = gateway_workers(multi)[0]
    port = multi.port
    with ThreadPoolExecutor(1) as pool, client(multi) as admin:
        os.kill(multi.proc.pid, signal.SIGSTOP)     # the worker alone accepts
        try:
            pending = pool.submit(admin.post, "/api/2.0/serving-endpoints", json={
                "name": "via-worker", "config": {"served_entities": [{"name": "x", "external_model": {
                    "provider": "openai", "name": "fake", "task": "llm/v1/chat", "openai_config": {
                        "openai_api_base": upstream.url + "/v1", "openai_api_key_plaintext": "sk"}}}]}})
            wait_for(lambda: any(c.laddr and c.laddr.port == port and c.status == psutil.CONN_ESTABLISHED
                                 for c in worker.net_connections("tcp")), 10, 0.02,
                     what="the worker accepting the connection")
        finally:
            os.kill(multi.proc.pid, signal.SIGCONT)
        r = pending.result(timeout=30)
    assert r.status_code == 200, r.text
    with client(multi) as admin:
        wait_for(lambda: admin.get("/api/2.0/serving-endpoints/via-worker").json()["state"]["ready"] == "READY",
                 60, 0.05, what="via-worker READY")
    assert _invoke_fresh(multi, "via-worker").status_code == 200
