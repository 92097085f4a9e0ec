"""The AI Gateway on the in-process app (fake replicas, fake clock for the limiter): rate
limits and groups, token limits, guardrails, fallbacks, metrics, usage and payload tables."""

from __future__ import annotations

import json

import orjson
import pytest

from ladle.gateway.ratelimit import MemoryLimiter
from ladle.runtimes.fake import FakeBackend
from tests.integration.conftest import create

API = "/api/2.0/serving-endpoints"
INV = "/serving-endpoints/ep/invocations"


class Clock:
    t = 5000.0

    def __call__(self) -> float:
        return self.t


class Behaviour:
    """What each fake served entity answers (by entity name); echoes the request by default,
    with a `usage` of 60 tokens."""

    def __init__(self) -> None:
        self.by_entity: dict[str, tuple[int, str, bytes]] = {}
        self.seen: list[bytes] = []

    def __call__(self, spec, meta, body):
        self.seen.append(body)
        if spec.entity_name in self.by_entity:
            return self.by_entity[spec.entity_name]
        req = json.loads(body or b"{}")
        if req.get("stream"):
            text = req["messages"][-1]["content"]
            chunks = [{"object": "chat.completion.chunk", "choices": [
                {"index": 0, "delta": {"content": text[i:i + 5]}, "finish_reason": None}]}
                for i in range(0, len(text), 5)]
            chunks.append({"object": "chat.completion.chunk", "choices": [
                {"index": 0, "delta": {}, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 10, "completion_tokens": 20, "total_tokens": 30}})
            sse = b"".join(b"data: " + orjson.dumps(c) + b"\n\n" for c in chunks) + b"data: [DONE]\n\n"
            return 200, "text/event-stream", sse
        return 200, "application/json", orjson.dumps(
            {"predictions": {"echo": req, "usage": {"prompt_tokens": 40, "completion_tokens": 20}}})


@pytest.fixture
def behaviour():
    return Behaviour()


@pytest.fixture
def backend(behaviour):
    return FakeBackend(handler=behaviour)


@pytest.fixture
def clock(client):
    c = Clock()
    client.app.app.state.services.gateway.limiter = MemoryLimiter(c)
    return c


def put_gw(client, body, name="ep"):
    r = client.put(f"{API}/{name}/ai-gateway", json=body)
    assert r.status_code == 200, r.text
    return r


def user_token(client, name):
    r = client.post("/api/2.0/token-management/on-behalf-of/tokens", json={"user_name": name})
    return {"Authorization": f"Bearer {r.json()['token_value']}"}


def metric(client, name, ep="ep"):
    text = client.get(f"{API}/{ep}/metrics").text
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith(name + "{") or line.startswith(name + " "))


def test_calls_limit_answers_429_with_the_true_retry_after(client, clock):
    create(client)
    put_gw(client, {"rate_limits": [{"calls": 3, "renewal_period": "minute", "key": "user"}]})
    assert [client.post(INV, json={"inputs": [1]}).status_code for _ in range(3)] == [200] * 3
    clock.t += 20.2
    r = client.post(INV, json={"inputs": [1]})
    assert r.status_code == 429 and r.json()["error_code"] == "REQUEST_LIMIT_EXCEEDED"
    assert r.headers["Retry-After"] == "40"          # 60 - 20.2 = 39.8 s, rounded up
    clock.t += 39.7
    assert client.post(INV, json={"inputs": [1]}).headers["Retry-After"] == "1"
    clock.t += 0.1
    assert client.post(INV, json={"inputs": [1]}).status_code == 200
    assert metric(client, "request_rate_limited_count_total") == 2
    # the legacy endpoint rate limit adds to the gateway's
    r = client.put(f"{API}/ep/rate-limits", json={"rate_limits": [{"calls": 1, "renewal_period": "minute"}]})
    assert r.status_code == 200
    clock.t += 120
    assert [client.post(INV, json={"inputs": [1]}).status_code for _ in range(2)] == [200, 429]


def test_groups_feed_acls_and_group_rate_limits(client, clock):
    create(client)
    assert client.post("/api/2.0/ladle/groups", json={"display_name": "ml"}).status_code == 200
    r = client.post("/api/2.0/ladle/groups/ml/members", json={"user_name": "carol"})
    assert r.json()["members"] == [{"name": "carol", "type": "user"}]
    assert client.post("/api/2.0/ladle/groups", json={"display_name": "users"}).status_code == 400
    carol = user_token(client, "carol")
    assert client.post(INV, json={"inputs": [1]}, headers=carol).status_code == 403
    eid = client.get(f"{API}/ep").json()["id"]
    r = client.patch(f"/api/2.0/permissions/serving-endpoints/{eid}", json={"access_control_list": [
        {"group_name": "ml", "permission_level": "CAN_QUERY"}]})
    assert r.status_code == 200, r.text
    put_gw(client, {"rate_limits": [{"calls": 1, "renewal_period": "minute", "key": "user_group",
                                     "principal": "ml"}]})
    assert client.post(INV, json={"inputs": [1]}, headers=carol).status_code == 200
    r = client.post(INV, json={"inputs": [1]}, headers=carol)
    assert r.status_code == 429 and "group(s) 'ml'" in r.json()["message"]
    assert client.post(INV, json={"inputs": [1]}).status_code == 200      # admin: not in the group
    assert client.delete("/api/2.0/ladle/groups/ml/members/carol").status_code == 200
    assert client.post(INV, json={"inputs": [1]}, headers=carol).status_code == 403
    assert client.post("/api/2.0/ladle/groups", json={"display_name": "x"}, headers=carol).status_code == 403
    assert [g["display_name"] for g in client.get("/api/2.0/ladle/groups").json()["groups"]] == ["ml"]
    assert client.delete("/api/2.0/ladle/groups/ml").status_code == 200


def test_token_limit_counts_the_usage_of_answers(client, clock):
    create(client)
    put_gw(client, {"rate_limits": [{"tokens": 100, "renewal_period": "minute"}]})
    codes = [client.post(INV, json={"inputs": ["x"]}).status_code for _ in range(3)]
    assert codes == [200, 200, 429]                  # 60 + 60 tokens reach the limit of 100


def test_input_guardrails_block_and_mask(client, clock, behaviour):
    create(client)
    put_gw(client, {"guardrails": {"input": {"pii": {"behavior": "BLOCK"}, "invalid_keywords": ["falcon"]}}})
    r = client.post(INV, json={"inputs": ["my ssn is 078-05-1120"]})
    assert r.status_code == 400 and "US_SSN" in r.json()["message"]
    assert r.json()["input_guardrail"][0]["pii_detection"] is True
    r = client.post(INV, json={"inputs": ["about falcon"]})
    assert r.status_code == 400 and "falcon" in r.json()["message"]
    assert len(behaviour.seen) == 0                  # the model was never called
    assert metric(client, "request_guardrail_blocked_count_total") == 2
    put_gw(client, {"guardrails": {"input": {"pii": {"behavior": "MASK"}}}})
    r = client.post(INV, json={"inputs": ["mail a.b@c.com"], "client_request_id": "abc"})
    assert r.status_code == 200
    assert json.loads(behaviour.seen[-1])["inputs"] == ["mail <EMAIL_ADDRESS>"]


def test_output_guardrails_mask_unary_and_streams_and_block(client, clock):
    create(client)
    put_gw(client, {"guardrails": {"output": {"pii": {"behavior": "MASK"}}}})
    r = client.post(INV, json={"inputs": ["card 4111 1111 1111 1111"]})
    assert r.json()["predictions"]["echo"]["inputs"] == ["card <CREDIT_CARD>"]
    msg = "Call me at +1 (415) 555-0132 or write to jane@example.org, thanks a lot for all of it!"
    with client.stream("POST", INV, json={"messages": [{"role": "user", "content": msg}], "stream": True}) as s:
        raw = b"".join(s.iter_bytes())
    text = "".join(json.loads(line[6:])["choices"][0]["delta"].get("content", "")
                   for line in raw.decode().split("\n\n") if line.startswith("data: {"))
    assert text == "Call me at <PHONE_NUMBER> or write to <EMAIL_ADDRESS>, thanks a lot for all of it!"
    put_gw(client, {"guardrails": {"output": {"pii": {"behavior": "BLOCK"}}}})
    r = client.post(INV, json={"messages": [{"role": "user", "content": msg}], "stream": True})
    assert r.status_code == 400 and r.json()["finishReason"] == "output_guardrail_triggered"


def test_fallbacks_retry_the_next_entity_on_429_and_5xx(client, clock, behaviour):
    ents = [{"name": "a", "entity_name": "m", "entity_version": "1"},
            {"name": "b", "entity_name": "m", "entity_version": "2"}]
    create(client, entities=ents, traffic=[{"served_entity_name": "a", "traffic_percentage": 100},
                                           {"served_entity_name": "b", "traffic_percentage": 0}])
    behaviour.by_entity["a"] = (503, "application/json", b'{"error_code": "TEMPORARILY_UNAVAILABLE"}')
    r = client.post(INV, json={"inputs": [1]})
    assert r.status_code == 503 and r.headers["served-model-name"] == "a"
    put_gw(client, {"fallback_config": {"enabled": True}})
    r = client.post(INV, json={"inputs": [1]})
    assert r.status_code == 200 and r.headers["served-model-name"] == "b"
    behaviour.by_entity["a"] = (429, "application/json", b'{"error_code": "REQUEST_LIMIT_EXCEEDED"}')
    assert client.post(INV, json={"inputs": [1]}).headers["served-model-name"] == "b"
    behaviour.by_entity["b"] = (500, "application/json", b'{"error_code": "INTERNAL_ERROR"}')
    r = client.post(INV, json={"inputs": [1]})          # all fail: the last failure is returned
    assert r.status_code == 500 and r.headers["served-model-name"] == "b"
    behaviour.by_entity["a"] = (400, "application/json", b'{"error_code": "BAD_REQUEST"}')
    r = client.post(INV, json={"inputs": [1]})          # a 4xx is the caller's problem: no retry
    assert r.status_code == 400 and r.headers["served-model-name"] == "a"
    r = client.post("/serving-endpoints/ep/served-models/a/invocations", json={"inputs": [1]})
    assert r.status_code == 400                          # a named served model never falls back


def test_usage_and_inference_tables(client, clock, tmp_path):
    duckdb = pytest.importorskip("duckdb")
    from deltalake import DeltaTable

    create(client)
    assert client.get("/api/2.0/ladle/usage").status_code == 404
    put_gw(client, {"usage_tracking_config": {"enabled": True},
                    "inference_table_config": {"enabled": True, "catalog_name": "main",
                                               "schema_name": "logs", "table_name_prefix": "ep"},
                    "rate_limits": [{"calls": 2, "renewal_period": "minute"}],
                    "guardrails": {"input": {"invalid_keywords": ["forbidden"]}}})
    assert client.post(INV, json={"inputs": ["hi"], "client_request_id": "c-1",
                                  "usage_context": {"project": "p"}}).status_code == 200
    assert client.post(INV, json={"inputs": ["forbidden"]}).status_code == 400
    assert client.post(INV, json={"inputs": ["x"]}).status_code == 429
    r = client.get("/api/2.0/ladle/usage?group_by=requester")
    assert r.status_code == 200
    (row,) = r.json()["rows"]
    assert row["requester"] == "admin" and row["request_count"] == 3 and row["error_count"] == 2
    assert row["input_token_count"] == 40 and row["output_token_count"] == 20
    assert client.get("/api/2.0/ladle/usage?group_by=week").status_code == 400
    path = tmp_path / "tables" / "main" / "logs" / "ep_payload"
    rows = duckdb.connect().execute(
        "SELECT status_code, client_request_id, request, response, requester FROM read_parquet(?) "
        "ORDER BY timestamp_ms, status_code", [DeltaTable(str(path)).file_uris()]).fetchall()
    assert sorted(r[0] for r in rows) == [200, 400, 429]
    ok = next(r for r in rows if r[0] == 200)
    assert ok[1] == "c-1" and json.loads(ok[2])["inputs"] == ["hi"] and "predictions" in json.loads(ok[3])
    refused = next(r for r in rows if r[0] == 429)
    assert json.loads(refused[3])["error_code"] == "REQUEST_LIMIT_EXCEEDED"


def test_unsupported_or_incomplete_gateway_config_is_refused(client):
    create(client)
    for body, field in [
        ({"guardrails": {"input": {"safety": True}}}, "guardrails.input.safety"),
        ({"inference_table_config": {"enabled": True, "catalog_name": "c"}}, "inference_table_config.schema_name"),
    ]:
        r = client.put(f"{API}/ep/ai-gateway", json=body)
        assert r.status_code == 400 and r.json()["error_code"] == "INVALID_PARAMETER_VALUE"
        assert field in r.json()["message"], r.json()
    assert "cannot be enabled" in client.put(f"{API}/ep/ai-gateway", json={
        "guardrails": {"output": {"safety": True}}}).json()["message"]
    assert "ai_gateway" not in client.get(f"{API}/ep").json()
    r = client.post(API, json={"name": "ep2", "config": {"served_entities": [
        {"entity_name": "m", "entity_version": "1"}]}, "ai_gateway": {"guardrails": {"input": {"safety": True}}}})
    assert r.status_code == 400 and "ai_gateway.guardrails.input.safety" in r.json()["message"]


SAFETY_PLUGIN = '''
def classify(texts):
    """A keyword classifier standing in for a real model: what matters here is the plug-in path."""
    return ["violence"] if any("hurt someone" in t.lower() for t in texts) else []
'''


@pytest.fixture
def installed_safety_classifier(tmp_path, monkeypatch):
    """A package providing a classifier under the `ladle.safety_classifiers` entry point
    group, installed the way pip would (a module and its .dist-info on sys.path)."""
    from ladle.gateway import capabilities

    (tmp_path / "ladle_test_safety.py").write_text(SAFETY_PLUGIN)
    info = tmp_path / "ladle_test_safety-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: ladle-test-safety\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[ladle.safety_classifiers]\nkeywords = ladle_test_safety:classify\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    capabilities.safety_classifier.cache_clear()
    yield
    capabilities.safety_classifier.cache_clear()


def test_an_installed_safety_classifier_enables_the_safety_guardrail(client, clock, behaviour,
                                                                    installed_safety_classifier):
    create(client)
    put_gw(client, {"guardrails": {"input": {"safety": True}}})
    assert client.post(INV, json={"inputs": ["how do I bake bread"]}).status_code == 200
    r = client.post(INV, json={"inputs": ["help me hurt someone"]})
    assert r.status_code == 400 and "unsafe content (violence)" in r.json()["message"], r.json()
    assert r.json()["input_guardrail"][0]["flagged"] is True
    assert len(behaviour.seen) == 1                  # the unsafe request never reached the model
    assert metric(client, "request_guardrail_blocked_count_total") == 1
