"""Two real ladle servers on one PostgreSQL and one Redis, as behind a load balancer: what is
made on one is seen and served by the other (tokens, secrets, endpoints, tags), rate limits
are counted once across both, one reconciler runs between them and the other takes over when
it stops. Both use the e2e server's MLflow registry (LADLE_MLFLOW_TRACKING_URI); the endpoints
are external models on a fake OpenAI upstream (the shared one's key from the secret store).

The tests pass alone and in any order, except that the takeover test stops a server of the
pair: it is marked `ends_module` and runs after the module's other tests."""

from __future__ import annotations

import json

import httpx
import pytest
from cryptography.fernet import Fernet
from e2e_support import RECONCILER_LINE, server_pair, wait_for
from llm_fixtures import FakeUpstream
from openai import OpenAI

from ladle.testing.process import LadleProcess
from ladle.testing.redis_server import redis_server

KEY = "sk-shared-0123456789"


def _upstream(path, headers, body):
    if headers.get("authorization") != f"Bearer {KEY}":
        return 401, {}, {"error": {"message": "Incorrect API key provided"}}
    return 200, {}, {"id": "c1", "object": "chat.completion", "created": 1, "model": body["model"],
                     "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hello!"},
                                  "finish_reason": "stop"}],
                     "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}}


@pytest.fixture(scope="module")
def pair(server, postgres, tmp_path_factory):
    """Servers a and b: one database, one Redis, one secret key, one admin token."""
    work = tmp_path_factory.mktemp("shared")
    with redis_server(work / "redis") as redis_url, FakeUpstream(_upstream) as upstream, \
            server_pair(server, postgres.new_database(), work, LADLE_REDIS_URL=redis_url,
                        LADLE_SECRET_KEY=Fernet.generate_key().decode()) as (a, b):
        yield a, b, upstream


def _gpt(upstream, **openai_config: str) -> dict:
    return {"name": "gpt", "external_model": {"name": "gpt-4o-mini", "provider": "openai", "task": "llm/v1/chat",
                                              "openai_config": {"openai_api_base": upstream.url + "/v1",
                                                                **openai_config}}}


@pytest.fixture(scope="module")
def shared_chat(pair) -> str:
    """`shared-chat`, made on a with its key in the secret store."""
    a, _, upstream = pair
    with a.client() as ca:
        assert ca.post("/api/2.0/secrets/scopes/create", json={"scope": "shared"}).status_code == 200
        assert ca.post("/api/2.0/secrets/put", json={"scope": "shared", "key": "openai",
                                                       "string_value": KEY}).status_code == 200
        r = ca.post("/api/2.0/serving-endpoints", json={"name": "shared-chat", "config": {"served_entities": [
            _gpt(upstream, openai_api_key="{{secrets/shared/openai}}")]}})
        assert r.status_code == 200, r.text
    return "shared-chat"


def _chat(srv: LadleProcess, name: str, token: str | None = None) -> httpx.Response:
    with srv.client(token) as c:
        return c.post(f"/serving-endpoints/{name}/invocations",
                      json={"messages": [{"role": "user", "content": "hi"}], "max_tokens": 5})


def _leader_log(srv: LadleProcess) -> list[str]:
    return [line for line in srv.output().splitlines() if "runs the reconciler" in line]


def test_a_token_made_on_one_server_works_on_the_other_and_dies_on_both(pair):
    a, b, _ = pair
    with a.client() as ca:
        r = ca.post("/api/2.0/token-management/on-behalf-of/tokens", json={"user_name": "carol"})
        assert r.status_code == 200, r.text
        tok, tok_id = r.json()["token_value"], r.json()["token_info"]["token_id"]
    with b.client(tok) as cb:
        assert cb.get("/api/2.0/serving-endpoints").status_code == 200       # at once
    with a.client() as ca:
        assert ca.delete(f"/api/2.0/token-management/tokens/{tok_id}").status_code == 200
    with b.client(tok) as cb:
        wait_for(lambda: cb.get("/api/2.0/serving-endpoints").status_code == 401, 10,
                 what="the revoked token refused by the other server")


def test_an_endpoint_made_on_one_server_is_served_by_both(pair, shared_chat):
    a, b, _ = pair
    with b.client() as cb:
        ep = wait_for(lambda: (lambda j: j if j.get("state", {}).get("ready") == "READY" else None)(
            cb.get("/api/2.0/serving-endpoints/shared-chat").json()), 20, what="READY seen through b")
        assert ep["config"]["served_entities"][0]["external_model"]["provider"] == "openai"
        assert KEY not in json.dumps(ep)
    oa_b = OpenAI(base_url=b.url + "/serving-endpoints", api_key=b.admin_token)
    out = oa_b.chat.completions.create(model="shared-chat", messages=[{"role": "user", "content": "hi"}])
    assert out.choices[0].message.content == "Hello!" and out.usage.total_tokens == 5
    assert _chat(a, "shared-chat").json()["choices"][0]["message"]["content"] == "Hello!"
    with b.client() as cb:
        r = cb.patch("/api/2.0/serving-endpoints/shared-chat/tags", json={"add_tags": [{"key": "team", "value": "ml"}]})
        assert r.status_code == 200, r.text
    with a.client() as ca:
        assert {"key": "team", "value": "ml"} in ca.get("/api/2.0/serving-endpoints/shared-chat").json()["tags"]


def test_rate_limits_are_counted_once_across_both_servers(pair):
    a, b, upstream = pair
    with b.client() as cb:   # made with its limit: neither server ever serves it without
        r = cb.post("/api/2.0/serving-endpoints", json={
            "name": "shared-limited", "config": {"served_entities": [_gpt(upstream, openai_api_key_plaintext=KEY)]},
            "ai_gateway": {"rate_limits": [{"calls": 4, "key": "endpoint", "renewal_period": "minute"}]}})
        assert r.status_code == 200, r.text
    for srv in (a, b):
        with srv.client() as c:
            wait_for(lambda: c.get("/api/2.0/serving-endpoints/shared-limited").json()["state"]["ready"] == "READY",
                     20, what="shared-limited READY")
    # a server that has not published the route yet answers 404 (not ready), which is not
    # counted: wait for one answer from each, then two more fill the budget of four
    for srv in (a, b):
        wait_for(lambda: _chat(srv, "shared-limited").status_code == 200, 20, what=f"{srv.url} routes it")
    codes = [_chat(srv, "shared-limited").status_code for srv in (a, b)]
    assert codes == [200, 200]
    for srv in (a, b):
        r = _chat(srv, "shared-limited")
        assert r.status_code == 429, r.text
        assert r.json()["error_code"] == "REQUEST_LIMIT_EXCEEDED" and 1 <= int(r.headers["retry-after"]) <= 60


@pytest.mark.ends_module
def test_one_reconciler_and_the_other_takes_over(pair, postgres):
    a, b, upstream = pair
    leaders = [srv for srv in (a, b) if _leader_log(srv)]
    assert len(leaders) == 1, [_leader_log(s) for s in (a, b)]
    leader = leaders[0]
    other = b if leader is a else a
    leader.stop()
    with other.client() as c:
        r = c.post("/api/2.0/serving-endpoints", json={"name": "after-takeover", "config": {"served_entities": [
            _gpt(upstream, openai_api_key_plaintext=KEY)]}})
        assert r.status_code == 200, r.text
        wait_for(lambda: c.get("/api/2.0/serving-endpoints/after-takeover").json()["state"]["ready"] == "READY",
                 20, what="READY after the leader stopped")
    assert any(RECONCILER_LINE in line for line in _leader_log(other))
    assert _chat(other, "after-takeover").status_code == 200
