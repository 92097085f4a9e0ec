"""The Responses API on the in-process app (fake replicas): a chat endpoint (its MLmodel says
`agent/v1/chat`) answers through the translation, an agent endpoint (`agent/v1/responses`) natively, and the
AI Gateway counts both like chat (token limits, usage rows)."""

from __future__ import annotations

import json

import orjson
import pytest

from ladle.entities.prepare import model_dir
from ladle.gateway.ratelimit import MemoryLimiter
from ladle.runtimes.fake import FakeBackend
from tests.integration.conftest import create

API = "/api/2.0/serving-endpoints"
RESP = "/serving-endpoints/responses"


def _chat(req: dict) -> tuple[int, str, bytes]:
    text = "echo: " + req["messages"][-1]["content"]
    usage = {"prompt_tokens": 40, "completion_tokens": 20, "total_tokens": 60}
    if req.get("stream"):
        chunks = [{"object": "chat.completion.chunk", "choices": [
            {"index": 0, "delta": {"content": w + " "}, "finish_reason": None}]} for w in text.split()]
        chunks.append({"object": "chat.completion.chunk", "choices": [
            {"index": 0, "delta": {}, "finish_reason": "stop"}], "usage": usage})
        return 200, "text/event-stream", b"".join(b"data: " + orjson.dumps(c) + b"\n\n" for c in chunks) + \
            b"data: [DONE]\n\n"
    return 200, "application/json", orjson.dumps({
        "object": "chat.completion", "model": "echo", "usage": usage,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}]})


def _agent(req: dict) -> tuple[int, str, bytes]:
    return 200, "application/json", orjson.dumps({
        "output": [{"type": "message", "id": "msg_1", "role": "assistant", "status": "completed",
                    "content": [{"type": "output_text", "text": f"agent got {len(req['input'])} items",
                                 "annotations": []}]}],
        "usage": {"input_tokens": 30, "output_tokens": 5, "total_tokens": 35}})


class Replicas:
    def __init__(self) -> None:
        self.seen: list[dict] = []

    def __call__(self, spec, meta, body):
        req = json.loads(body)
        self.seen.append(req)
        return _chat(req) if "messages" in req else _agent(req)


@pytest.fixture
def replicas():
    return Replicas()


@pytest.fixture
def backend(replicas):
    return FakeBackend(handler=replicas)


@pytest.fixture
def endpoints(client, tmp_path):
    for version, task in (("1", "agent/v1/chat"), ("2", "agent/v1/responses")):     # a ChatModel, a ResponsesAgent
        mlmodel = model_dir(tmp_path / "models", "m", version) / "MLmodel"
        mlmodel.parent.mkdir(parents=True)
        mlmodel.write_text(f"flavors: {{}}\nmetadata:\n  task: {task}\n")
    create(client, "chat")
    create(client, "agent", entities=[{"entity_name": "m", "entity_version": "2"}])
    client.app.app.state.services.gateway.limiter = MemoryLimiter(lambda: 5000.0)
    return client


def test_a_chat_endpoint_answers_through_the_translation(endpoints, replicas):
    c = endpoints
    r = c.post(RESP, json={"model": "chat", "input": "hi", "instructions": "be brief"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["object"] == "response" and body["output"][0]["content"][0]["text"] == "echo: hi"
    assert body["usage"]["input_tokens"] == 40 and r.headers["served-model-name"] == "m-1"
    assert replicas.seen[-1]["messages"] == [{"role": "system", "content": "be brief"},
                                             {"role": "user", "content": "hi"}]
    s = c.post(RESP, json={"model": "chat", "input": "hi there", "stream": True})
    assert s.status_code == 200 and s.headers["content-type"].startswith("text/event-stream")
    events = [json.loads(b.split("\ndata: ", 1)[1]) for b in s.text.split("\n\n") if b.strip()]
    assert [e["delta"] for e in events if e["type"] == "response.output_text.delta"] == ["echo: ", "hi ", "there "]
    assert events[-1]["type"] == "response.completed" and events[-1]["response"]["usage"]["output_tokens"] == 20


def test_bad_fields_are_400s_naming_them_and_reach_no_model(endpoints, replicas):
    c = endpoints
    for body, field in (({"model": "chat", "input": "x", "previous_response_id": "r"}, "previous_response_id"),
                        ({"model": "agent", "input": "x", "store": True}, "store"),
                        ({"model": "chat", "input": "x", "tools": [{"type": "file_search"}]}, "tools[0].type"),
                        ({"input": "x"}, "model")):
        r = c.post(RESP, json=body)
        assert r.status_code == 400 and r.json()["message"].startswith(field + ":"), r.text
    assert c.post(RESP, json={"model": "nope", "input": "x"}).status_code == 404
    assert replicas.seen == []


def test_an_agent_answers_natively_and_tokens_count_against_limits(endpoints, replicas):
    c = endpoints
    # the endpoint says what it serves, from the model's MLmodel (the web UI's playground picks by it)
    assert c.get("/api/2.0/serving-endpoints/agent").json()["task"] == "agent/v1/responses"
    r = c.post(RESP, json={"model": "agent", "input": "hi", "instructions": "be brief"})
    assert r.status_code == 200, r.text
    assert replicas.seen[-1] == {"input": [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}]}
    body = r.json()
    assert body["output"][0]["content"][0]["text"] == "agent got 2 items"
    assert body["object"] == "response" and body["status"] == "completed" and body["id"].startswith("resp_")
    # an agent without predict_stream asked for a stream: its answer as the events of one
    s = c.post(RESP, json={"model": "agent", "input": "hi", "stream": True})
    assert s.status_code == 200 and s.headers["content-type"].startswith("text/event-stream")
    events = [json.loads(b.split("\ndata: ", 1)[1]) for b in s.text.split("\n\n") if b.strip()]
    assert [e["type"] for e in events] == [
        "response.created", "response.output_item.added", "response.content_part.added",
        "response.output_text.delta", "response.output_text.done", "response.output_item.done",
        "response.completed"]
    assert events[3]["delta"] == "agent got 1 items" and events[-1]["response"]["usage"]["input_tokens"] == 30
    # the invocations route: a Responses body to a chat endpoint is translated too
    r = c.post("/serving-endpoints/chat/invocations", json={"input": "yo"})
    assert r.status_code == 200 and r.json()["output"][0]["content"][0]["text"] == "echo: yo"
    r = c.post("/serving-endpoints/chat/invocations", json={"input": [{"role": "user", "content": "yo"}]})
    assert r.status_code == 200 and r.json()["object"] == "response"
    r = c.post("/serving-endpoints/chat/invocations", json={"input": ["an embeddings body"]})   # not Responses
    assert r.status_code == 200 and replicas.seen[-1] == {"input": ["an embeddings body"]}    # as sent
    for name, per_call in (("chat", 60), ("agent", 35)):
        r = c.put(f"{API}/{name}/ai-gateway", json={"rate_limits": [{"tokens": 100, "renewal_period": "minute"}]})
        assert r.status_code == 200, r.text
        codes = [c.post(RESP, json={"model": name, "input": "x"}).status_code for _ in range(4)]
        assert codes == [200] * (100 // per_call + 1) + [429] * (3 - 100 // per_call), (name, codes)


def test_an_external_chat_model_gets_tools_and_function_call_items(client):
    """An OpenAI-provider endpoint (a fake upstream behind the transport seam): the tools and
    the call round trip reach the provider as chat; its tool call comes back as an item."""
    import httpx

    from ladle.gateway.external import ExternalCaller
    from tests.unit.test_llm_external import FakeTransport

    sent: list[dict] = []

    def upstream(req: httpx.Request) -> httpx.Response:
        body = json.loads(req.content)
        sent.append(body)
        msg = ({"role": "assistant", "content": "It is sunny."} if body["messages"][-1]["role"] == "tool" else
               {"role": "assistant", "content": None, "tool_calls": [{"id": "call_7", "type": "function", "function": {
                   "name": "get_weather", "arguments": '{"city": "Paris"}'}}]})
        return httpx.Response(200, json={"id": "x", "object": "chat.completion", "created": 1, "model": "gpt-4o",
                                         "choices": [{"index": 0, "message": msg, "finish_reason": "stop"}],
                                         "usage": {"prompt_tokens": 9, "completion_tokens": 4, "total_tokens": 13}})

    client.app.app.state.services.gateway.external = ExternalCaller(lambda v: v, 5.0, transport=FakeTransport(upstream))
    create(client, "ext", entities=[{"name": "gpt", "external_model": {
        "name": "gpt-4o", "provider": "openai", "task": "llm/v1/chat",
        "openai_config": {"openai_api_key_plaintext": "sk-test", "openai_api_base": "http://upstream.invalid/v1"}}}])
    tools = [{"type": "function", "name": "get_weather", "parameters": {"type": "object"}}]
    r = client.post(RESP, json={"model": "ext", "input": "weather in Paris?", "tools": tools})
    assert r.status_code == 200, r.text
    call = r.json()["output"][0]
    assert (call["type"], call["call_id"], call["name"]) == ("function_call", "call_7", "get_weather")
    assert sent[-1]["tools"] == [{"type": "function", "function": {"name": "get_weather",
                                                                   "parameters": {"type": "object"}}}]
    r = client.post(RESP, json={"model": "ext", "tools": tools, "input": [
        {"role": "user", "content": "weather in Paris?"}, call,
        {"type": "function_call_output", "call_id": "call_7", "output": "sunny"}]})
    assert r.status_code == 200 and r.json()["output"][0]["content"][0]["text"] == "It is sunny."
    assert sent[-1]["messages"][1:] == [
        {"role": "assistant", "content": None, "tool_calls": [{"id": "call_7", "type": "function", "function": {
            "name": "get_weather", "arguments": '{"city": "Paris"}'}}]},
        {"role": "tool", "tool_call_id": "call_7", "content": "sunny"}]
    assert r.json()["usage"]["total_tokens"] == 13


def test_usage_rows_count_a_responses_call_like_chat(endpoints):
    pytest.importorskip("deltalake")
    c = endpoints
    r = c.put(f"{API}/chat/ai-gateway", json={"usage_tracking_config": {"enabled": True}})
    assert r.status_code == 200, r.text
    assert c.post(RESP, json={"model": "chat", "input": "hi"}).status_code == 200
    assert c.post(RESP, json={"model": "chat", "input": "hi", "stream": True}).status_code == 200
    (row,) = c.get("/api/2.0/ladle/usage?group_by=requester").json()["rows"]
    assert row["request_count"] == 2 and row["input_token_count"] == 80 and row["output_token_count"] == 40
