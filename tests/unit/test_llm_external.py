"""External model providers against mock upstreams speaking each provider's wire format (a
fake behind ladle's transport seam; handlers build httpx.Request/Response objects): request
translation, response and stream-chunk translation, and the error mapping (401/403,
429 + Retry-After, 502, 504) without leaking credentials. The production transport (aiohttp)
is driven against real local upstreams in tests/e2e/test_llm_endpoints.py."""

from __future__ import annotations

import json
from typing import Any, Callable

import httpx
import pytest

from ladle.gateway.external import ExternalCaller
from ladle.gateway.external.bedrock import encode_event
from ladle.gateway.external.transport import UpstreamTimeout, UpstreamUnreachable
from ladle.schemas.errors import ApiError

MSGS = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}]
SECRETS = {"{{secrets/s/k}}": "sk-live-123456"}


def caller(handler: Callable[[httpx.Request], httpx.Response], timeout: float = 5.0) -> tuple[ExternalCaller, list]:
    seen: list[httpx.Request] = []

    def wrapped(req: httpx.Request) -> httpx.Response:
        seen.append(req)
        return handler(req)

    return ExternalCaller(lambda v: SECRETS.get(v, v), timeout, transport=FakeTransport(wrapped)), seen


class FakeResponse:
    def __init__(self, resp: httpx.Response) -> None:
        self.resp, self.status, self.headers = resp, resp.status_code, resp.headers

    async def read(self) -> bytes:
        return await self.resp.aread()

    async def chunks(self):
        async for b in self.resp.aiter_bytes():
            yield b

    async def aclose(self) -> None:
        await self.resp.aclose()


class FakeTransport:
    """ladle's transport seam answered by a handler: httpx.Request in, httpx.Response out
    (or UpstreamTimeout / UpstreamUnreachable raised)."""

    def __init__(self, handler: Callable[[httpx.Request], httpx.Response]) -> None:
        self.handler = handler

    async def open(self, method, url, headers, content) -> FakeResponse:
        return FakeResponse(self.handler(httpx.Request(method, url, headers=headers, content=content)))

    async def aclose(self) -> None:
        pass


def sse(*events: Any) -> bytes:
    return b"".join(f"data: {e if isinstance(e, str) else json.dumps(e)}\n\n".encode() for e in events)


async def call(c: ExternalCaller, em: dict, body: dict) -> tuple[int, str, bytes]:
    r = await c.call("ent", em, json.dumps(body).encode())
    return r.status, r.content_type, await r.read()


def chunks_of(raw: bytes) -> list[Any]:
    out = []
    for ev in raw.decode().split("\n\n"):
        if ev:
            assert ev.startswith("data: ")
            out.append(ev[6:] if ev[6:] == "[DONE]" else json.loads(ev[6:]))
    return out


async def test_openai_passthrough_with_secret_reference():
    def h(req):
        assert req.url == "https://api.openai.com/v1/chat/completions"
        assert req.headers["authorization"] == "Bearer sk-live-123456"
        body = json.loads(req.content)
        assert body["model"] == "gpt-4o" and "client_request_id" not in body
        return httpx.Response(200, json={"object": "chat.completion", "choices": [], "usage": {"total_tokens": 1}})

    c, _ = caller(h)
    em = {"provider": "openai", "name": "gpt-4o", "task": "llm/v1/chat",
          "openai_config": {"openai_api_key": "{{secrets/s/k}}"}}
    status, ctype, out = await call(c, em, {"messages": MSGS, "client_request_id": "r1"})
    assert status == 200 and json.loads(out)["object"] == "chat.completion"


async def test_azure_url_and_header():
    def h(req):
        assert str(req.url) == "https://x.openai.azure.com/openai/deployments/dep/embeddings?api-version=2024-02-01"
        assert req.headers["api-key"] == "az-key" and "model" not in json.loads(req.content)
        return httpx.Response(200, json={"object": "list", "data": [{"object": "embedding", "index": 0,
                                                                      "embedding": [1.0, 2.0]}]})

    c, _ = caller(h)
    em = {"provider": "openai", "name": "text-embedding-3", "task": "llm/v1/embeddings", "openai_config": {
        "openai_api_type": "azure", "openai_api_key_plaintext": "az-key", "openai_api_base": "https://x.openai.azure.com",
        "openai_deployment_name": "dep", "openai_api_version": "2024-02-01"}}
    _, _, out = await call(c, em, {"input": "x", "encoding_format": "base64"})
    assert isinstance(json.loads(out)["data"][0]["embedding"], str)   # floats re-encoded as asked


async def test_anthropic_request_response_and_stream():
    def h(req):
        body = json.loads(req.content)
        assert req.headers["x-api-key"] == "ant-key" and req.headers["anthropic-version"]
        assert body["system"] == "be brief" and body["messages"] == [{"role": "user", "content": "hi"}]
        assert body["max_tokens"] == 7 and body["stop_sequences"] == ["END"]
        if body.get("stream"):
            return httpx.Response(200, headers={"content-type": "text/event-stream"}, content=sse(
                {"type": "message_start", "message": {"id": "m1", "model": "claude", "usage": {"input_tokens": 5}}},
                {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "He"}},
                {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "llo"}},
                {"type": "message_delta", "delta": {"stop_reason": "max_tokens"}, "usage": {"output_tokens": 2}},
                {"type": "message_stop"}))
        return httpx.Response(200, json={"id": "m1", "model": "claude", "stop_reason": "end_turn",
                                         "content": [{"type": "text", "text": "Hello"},
                                                     {"type": "tool_use", "id": "t1", "name": "f", "input": {"a": 1}}],
                                         "usage": {"input_tokens": 5, "output_tokens": 2}})

    c, _ = caller(h)
    em = {"provider": "anthropic", "name": "claude", "task": "llm/v1/chat",
          "anthropic_config": {"anthropic_api_key_plaintext": "ant-key"}}
    body = {"messages": MSGS, "max_tokens": 7, "stop": "END"}
    _, ctype, out = await call(c, em, body)
    r = json.loads(out)
    assert ctype == "application/json" and r["choices"][0]["message"]["content"] == "Hello"
    assert r["choices"][0]["message"]["tool_calls"][0]["function"] == {"name": "f", "arguments": '{"a": 1}'}
    assert r["usage"] == {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7}
    _, ctype, out = await call(c, em, {**body, "stream": True, "stream_options": {"include_usage": True}})
    ch = chunks_of(out)
    assert ctype == "text/event-stream" and ch[-1] == "[DONE]"
    assert "".join(x["choices"][0]["delta"].get("content") or "" for x in ch[:-1] if x["choices"]) == "Hello"
    assert [x["choices"][0]["finish_reason"] for x in ch[:-1] if x["choices"]][-1] == "length"
    assert ch[-2]["usage"]["completion_tokens"] == 2 and ch[-2]["choices"] == []


async def test_cohere_chat_stream_and_embed():
    def h(req):
        body = json.loads(req.content)
        if req.url.path == "/v2/embed":
            assert body["texts"] == ["a", "b"]
            return httpx.Response(200, json={"embeddings": {"float": [[1.0], [2.0]]},
                                             "meta": {"billed_units": {"input_tokens": 2}}})
        assert body["messages"][0] == {"role": "system", "content": "be brief"} and body["p"] == 0.5
        return httpx.Response(200, headers={"content-type": "text/event-stream"}, content=(
            b"event: message-start\ndata: " + json.dumps({"type": "message-start", "id": "c1"}).encode() + b"\n\n"
            b"event: content-delta\ndata: " + json.dumps({"type": "content-delta", "delta": {"message": {
                "content": {"text": "Hi"}}}}).encode() + b"\n\n"
            b"event: message-end\ndata: " + json.dumps({"type": "message-end", "delta": {
                "finish_reason": "COMPLETE", "usage": {"tokens": {"input_tokens": 3, "output_tokens": 1}}}}).encode()
            + b"\n\n"))

    c, _ = caller(h)
    cfg = {"cohere_api_key_plaintext": "co"}
    _, _, out = await call(c, {"provider": "cohere", "name": "embed", "task": "llm/v1/embeddings",
                               "cohere_config": cfg}, {"input": ["a", "b"]})
    assert [d["embedding"] for d in json.loads(out)["data"]] == [[1.0], [2.0]]
    _, _, out = await call(c, {"provider": "cohere", "name": "cmd", "task": "llm/v1/chat", "cohere_config": cfg},
                           {"messages": MSGS, "top_p": 0.5, "stream": True})
    ch = chunks_of(out)
    assert "".join(x["choices"][0]["delta"].get("content") or "" for x in ch[:-1]) == "Hi"


async def test_bedrock_signed_converse_stream():
    def h(req):
        assert req.url.path == "/model/anthropic.claude-v2%3A1/converse-stream" or "converse-stream" in str(req.url)
        assert req.headers["authorization"].startswith("AWS4-HMAC-SHA256 Credential=AKID/")
        assert "x-amz-date" in req.headers
        body = json.loads(req.content)
        assert body["system"] == [{"text": "be brief"}] and body["inferenceConfig"] == {"maxTokens": 4}
        raw = (encode_event("messageStart", {"role": "assistant"})
               + encode_event("contentBlockDelta", {"delta": {"text": "Yo"}, "contentBlockIndex": 0})
               + encode_event("messageStop", {"stopReason": "end_turn"})
               + encode_event("metadata", {"usage": {"inputTokens": 4, "outputTokens": 1, "totalTokens": 5}}))
        return httpx.Response(200, headers={"content-type": "application/vnd.amazon.eventstream"}, content=raw)

    c, _ = caller(h)
    em = {"provider": "amazon-bedrock", "name": "anthropic.claude-v2:1", "task": "llm/v1/chat",
          "amazon_bedrock_config": {"aws_region": "us-east-1", "bedrock_provider": "anthropic",
                                    "aws_access_key_id_plaintext": "AKID", "aws_secret_access_key_plaintext": "SK"}}
    _, ctype, out = await call(c, em, {"messages": MSGS, "max_tokens": 4, "stream": True,
                                       "stream_options": {"include_usage": True}})
    ch = chunks_of(out)
    assert ctype == "text/event-stream"
    assert "".join(x["choices"][0]["delta"].get("content") or "" for x in ch[:-1] if x["choices"]) == "Yo"
    assert ch[-2]["usage"] == {"prompt_tokens": 4, "completion_tokens": 1, "total_tokens": 5}


async def test_vertex_generate_content(monkeypatch):
    from ladle.gateway.external import vertex

    async def token(key: str) -> str:
        assert json.loads(key)["client_email"] == "sa@p.iam"
        return "ya29.token"

    monkeypatch.setattr(vertex, "access_token", token)

    def h(req):
        assert str(req.url).endswith("/v1/projects/p/locations/us-central1/publishers/google/models/gemini:generateContent")
        assert req.headers["authorization"] == "Bearer ya29.token"
        body = json.loads(req.content)
        assert body["systemInstruction"] == {"parts": [{"text": "be brief"}]}
        assert body["contents"] == [{"role": "user", "parts": [{"text": "hi"}]}]
        return httpx.Response(200, json={"candidates": [{"content": {"parts": [{"text": "Ciao"}]},
                                                         "finishReason": "STOP"}],
                                         "usageMetadata": {"promptTokenCount": 2, "candidatesTokenCount": 1}})

    c, _ = caller(h)
    em = {"provider": "google-cloud-vertex-ai", "name": "gemini", "task": "llm/v1/chat",
          "google_cloud_vertex_ai_config": {"project_id": "p", "region": "us-central1",
                                            "private_key_plaintext": json.dumps({"client_email": "sa@p.iam"})}}
    _, _, out = await call(c, em, {"messages": MSGS})
    r = json.loads(out)
    assert r["choices"][0]["message"]["content"] == "Ciao" and r["usage"]["total_tokens"] == 3


async def test_custom_provider_api_key_auth():
    def h(req):
        assert str(req.url) == "http://llm.local/v1/chat/completions" and req.headers["x-key"] == "sk-live-123456"
        return httpx.Response(200, json={"object": "chat.completion", "choices": []})

    c, _ = caller(h)
    em = {"provider": "custom", "name": "m", "task": "llm/v1/chat", "custom_provider_config": {
        "custom_provider_url": "http://llm.local/v1", "api_key_auth": {"key": "x-key", "value": "{{secrets/s/k}}"}}}
    assert (await call(c, em, {"messages": MSGS}))[0] == 200


EM = {"provider": "openai", "name": "gpt", "task": "llm/v1/chat",
      "openai_config": {"openai_api_key": "{{secrets/s/k}}"}}


@pytest.mark.parametrize("status, headers, code, want_status, retry", [
    (401, {}, "UNAUTHENTICATED", 401, None),
    (403, {}, "PERMISSION_DENIED", 403, None),
    (429, {"retry-after": "12"}, "REQUEST_LIMIT_EXCEEDED", 429, "12"),
    (500, {}, "BAD_GATEWAY", 502, None),
    (400, {}, "INVALID_PARAMETER_VALUE", 400, None),
])
async def test_upstream_errors_are_mapped_without_secrets(status, headers, code, want_status, retry):
    c, _ = caller(lambda req: httpx.Response(status, headers=headers, json={
        "error": {"message": "bad key sk-live-123456 given"}}))
    with pytest.raises(ApiError) as e:
        await call(c, EM, {"messages": MSGS})
    assert (e.value.error_code, e.value.status) == (code, want_status)
    assert "sk-live-123456" not in e.value.message and "[REDACTED]" in e.value.message
    assert e.value.headers.get("Retry-After") == retry


@pytest.mark.parametrize("exc, status", [(UpstreamTimeout("slow"), 504), (UpstreamUnreachable("refused"), 502)])
async def test_upstream_unreachable(exc, status):
    def h(req):
        raise exc

    c, _ = caller(h)
    with pytest.raises(ApiError) as e:
        await call(c, EM, {"messages": MSGS})
    assert e.value.status == status


async def test_bad_request_is_refused_before_calling_upstream():
    c, seen = caller(lambda req: httpx.Response(200, json={}))
    with pytest.raises(ApiError) as e:
        await call(c, EM, {"input": "embeddings body to a chat model"})
    assert e.value.status == 400 and not seen


async def test_stream_close_closes_upstream():
    closed = []

    class Body(httpx.AsyncByteStream):
        async def __aiter__(self):
            for i in range(1000):
                yield f"data: {json.dumps({'choices': [{'index': 0, 'delta': {'content': str(i)}}]})}\n\n".encode()

        async def aclose(self):
            closed.append(True)

    c, _ = caller(lambda req: httpx.Response(200, headers={"content-type": "text/event-stream"}, stream=Body()))
    r = await c.call("ent", EM, json.dumps({"messages": MSGS, "stream": True}).encode())
    it = r.chunks.__aiter__()
    await it.__anext__()
    await it.aclose()     # the client went away
    assert closed


def test_bedrock_event_stream_checks_its_crcs():
    import pytest

    from ladle.gateway.external.bedrock import EventStreamDecoder, encode_event
    from ladle.schemas.errors import ApiError

    good = encode_event("contentBlockDelta", {"delta": {"text": "Yo"}})
    assert [ev["delta"] for ev in EventStreamDecoder().feed(good[:7])] == []
    dec = EventStreamDecoder()
    assert list(dec.feed(good[:20])) == [] and [ev["delta"] for ev in dec.feed(good[20:])] == [{"text": "Yo"}]
    body = bytearray(good)
    body[-8] ^= 0x01                       # one bit of the payload flipped
    with pytest.raises(ApiError, match="CRC"):
        list(EventStreamDecoder().feed(bytes(body)))
    prelude = bytearray(good)
    prelude[3] ^= 0x40                     # the length flipped: the prelude's CRC catches it
    with pytest.raises(ApiError, match="CRC"):
        list(EventStreamDecoder().feed(bytes(prelude)))


async def test_vertex_token_refresh_is_shared_by_concurrent_requests(monkeypatch):
    import asyncio

    import jwt
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    from ladle.gateway.external import vertex

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode()
    sa = json.dumps({"private_key": pem, "private_key_id": "k1", "client_email": "sa@p.iam",
                     "token_uri": "https://oauth2.invalid/token-refresh-test"})
    posts, release = [], asyncio.Event()

    async def post(uri, form):
        posts.append(form)
        await release.wait()                # every caller is waiting before Google answers
        return httpx.Response(200, json={"access_token": f"ya29.{len(posts)}", "expires_in": 3600})

    monkeypatch.setattr(vertex, "_post_token", post)
    calls = [asyncio.ensure_future(vertex.access_token(sa)) for _ in range(5)]
    while not posts:
        await asyncio.sleep(0)
    release.set()
    assert await asyncio.gather(*calls) == ["ya29.1"] * 5
    assert len(posts) == 1
    claims = jwt.decode(posts[0]["assertion"], key.public_key(), algorithms=["RS256"],
                        audience="https://oauth2.invalid/token-refresh-test")
    assert claims["iss"] == "sa@p.iam" and claims["scope"] == vertex.SCOPE
    assert jwt.get_unverified_header(posts[0]["assertion"])["kid"] == "k1"
