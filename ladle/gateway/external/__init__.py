"""External model served entities: translate the OpenAI-shaped request for the provider,
call it, and hand back a `Reply` (status, content type, async chunks) exactly like a local
replica does, so the gateway pipeline treats both alike. `stream: true` answers SSE
(`data: {chunk}` ... `data: [DONE]`); a client that goes away closes the upstream stream.

Provider failures map to a fitting status with a clear message that never carries a
credential: bad key 401/403, upstream 429 (its Retry-After passed on), upstream down or
5xx 502, upstream timeout 504.
"""

from __future__ import annotations

import json
from typing import Any, AsyncIterator, Callable

import orjson

from ladle.gateway.external import anthropic, bedrock, cohere, openai_compat, vertex
from ladle.gateway.external.base import Ctx, Upstream
from ladle.gateway.external.transport import (AiohttpTransport, Transport, UpstreamError, UpstreamResponse,
                                              UpstreamTimeout)
from ladle.runtimes.base import Reply
from ladle.schemas import llm
from ladle.schemas.errors import ApiError
from ladle.schemas.external import PROVIDER_CONFIG_KEY
from ladle.support import sse

BUILDERS: dict[str, Callable[[Ctx], Upstream]] = {
    "openai": openai_compat.openai,
    "custom": openai_compat.custom,
    "databricks-model-serving": openai_compat.databricks,
    "ai21labs": openai_compat.ai21labs,
    "anthropic": anthropic.build,
    "cohere": cohere.build,
    "amazon-bedrock": bedrock.build,
    "google-cloud-vertex-ai": vertex.build,
}


PLAIN_CACHE = 1024


class ExternalCaller:
    def __init__(self, resolve: Callable[[str], str], timeout_s: float,
                 transport: Transport | None = None) -> None:
        self.resolve = resolve
        self.timeout_s = timeout_s
        self.transport = transport if transport is not None else AiohttpTransport(timeout_s)
        self._plain: dict[str, str] = {}     # sealed value -> its plaintext (see _resolve)

    async def aclose(self) -> None:
        await self.transport.aclose()

    async def call(self, entity: str, external_model: dict[str, Any], body: bytes,
                   headers: dict[str, str] | None = None) -> Reply:
        """`headers`: sent upstream as well (the request's W3C trace context, when traced)."""
        em = external_model
        provider, task = em["provider"], em["task"]
        data = llm.parse_body(body)
        llm.check_request(task, data)
        build = BUILDERS.get(provider)
        if build is None:
            raise ApiError("NOT_IMPLEMENTED", f"Provider '{provider}' is retired and not served by ladle; "
                           "use another provider.", 501)
        ctx = Ctx(entity, provider, em["name"], task, em.get(PROVIDER_CONFIG_KEY[provider]) or {}, data,
                  self._resolve)
        up = build(ctx)
        trace, headers = headers, dict(up.headers)
        if trace:
            headers.update(trace)
        if up.auth is not None:
            headers.update(await up.auth())
        content = up.content if up.content is not None else _dumps(up.body)
        try:
            resp = await self.transport.open(up.method, up.url, {"content-type": "application/json", **headers},
                                             content)
            if resp.status >= 400:
                text = (await _read(resp)).decode(errors="replace")
                raise upstream_error(ctx, resp.status, text, resp.headers.get("retry-after"))
            if ctx.stream and ("event-stream" in resp.headers.get("content-type", "") or up.decode != "sse"):
                return Reply(200, "text/event-stream", self._stream(resp, up, ctx))
            raw = await _read(resp)
        except UpstreamTimeout:
            raise ApiError("DEADLINE_EXCEEDED", f"The {provider} provider did not answer served entity "
                           f"'{entity}' within {self.timeout_s:g}s.", 504) from None
        except UpstreamError as e:
            raise ApiError("BAD_GATEWAY", f"Could not reach the {provider} provider for served entity "
                           f"'{entity}': {_scrub(str(e), ctx)}", 502) from None
        try:
            out = up.parse(_loads(raw))
        except (ValueError, KeyError, TypeError, AttributeError) as e:
            raise ApiError("BAD_GATEWAY", f"The {provider} provider answered served entity '{entity}' with "
                           f"an unexpected body ({type(e).__name__}).", 502) from None
        if task == llm.EMBEDDINGS and data.get("encoding_format") == "base64":
            for d in out.get("data", []):
                if isinstance(d.get("embedding"), list):
                    d["embedding"] = llm.encode_vector(d["embedding"], "base64")
        if ctx.stream:  # the provider ignored stream: one chunk, then [DONE]
            return Reply(200, "text/event-stream", _one(_as_chunk(out)))
        return Reply(200, "application/json", _one(_dumps(out)))

    def _resolve(self, value: str) -> str:
        """A secret reference is read each time (its value may change); any other value (a
        sealed plaintext) always unseals to the same plaintext, so that is kept (unsealing
        costs a Fernet decryption per request otherwise)."""
        if "{{" in value:
            return self.resolve(value)
        plain = self._plain.get(value)
        if plain is None:
            plain = self.resolve(value)
            if len(self._plain) >= PLAIN_CACHE:
                self._plain.clear()
            self._plain[value] = plain
        return plain

    async def _stream(self, resp: UpstreamResponse, up: Upstream, ctx: Ctx) -> AsyncIterator[bytes]:
        tr = up.translator() if up.translator is not None else None
        try:
            async for ev in _events(resp, up.decode):
                if ev is None:  # [DONE]
                    break
                for chunk in (tr.feed(ev) if tr is not None else [ev]):
                    yield llm.sse(chunk)
            if tr is not None and llm.include_usage(ctx.data):
                for chunk in tr.finish():
                    yield llm.sse(chunk)
            yield llm.SSE_DONE
        except ApiError as e:
            yield llm.sse({"error_code": e.error_code, "message": _scrub(e.message, ctx)})
        except UpstreamError as e:
            yield llm.sse({"error_code": "BAD_GATEWAY", "message": f"The {ctx.provider} stream broke: "
                           f"{_scrub(str(e), ctx)}"})
        finally:
            await resp.aclose()   # a client that disconnected closes the upstream stream too


def _loads(raw: bytes | str) -> Any:
    """orjson, or the standard library for what only it reads (NaN, Infinity)."""
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        return json.loads(raw)


def _dumps(obj: Any) -> bytes:
    """orjson, or the standard library for what only it writes (keys that are not strings)."""
    try:
        return orjson.dumps(obj)
    except TypeError:
        return json.dumps(obj).encode()


async def _read(resp: UpstreamResponse) -> bytes:
    try:
        return await resp.read()
    finally:
        await resp.aclose()


async def _one(b: bytes) -> AsyncIterator[bytes]:
    yield b


def _as_chunk(out: dict[str, Any]) -> bytes:
    """A whole chat/completions answer as SSE (for providers that do not stream a task)."""
    chunk = dict(out)
    if out.get("object") == "chat.completion":
        chunk["object"] = "chat.completion.chunk"
        chunk["choices"] = [{"index": c["index"], "delta": c["message"], "finish_reason": c["finish_reason"]}
                            for c in out["choices"]]
    return llm.sse(chunk) + llm.SSE_DONE


async def _events(resp: UpstreamResponse, decode: str) -> AsyncIterator[dict[str, Any] | None]:
    if decode == "aws-eventstream":
        dec = bedrock.EventStreamDecoder()
        async for raw in resp.chunks():
            for ev in dec.feed(raw):
                yield ev
        return
    async for ev in sse.aevents(resp.chunks()):
        payload = ev.data.strip()
        if not payload:
            continue
        if payload == "[DONE]":
            yield None
            return
        try:
            yield _loads(payload)
        except ValueError:
            continue


def _scrub(text: str, ctx: Ctx) -> str:
    for s in ctx.secrets_used:
        if s and len(s) >= 4:
            text = text.replace(s, "[REDACTED]")
    return text


def _message(text: str) -> str:
    try:
        d = json.loads(text)
    except ValueError:
        return text.strip()[:500]
    if isinstance(d, list) and d:
        d = d[0]
    if isinstance(d, dict):
        err = d.get("error")
        if isinstance(err, dict) and err.get("message"):
            return str(err["message"])
        for k in ("message", "error", "detail", "Message"):
            if isinstance(d.get(k), str) and d[k]:
                return d[k]
    return text.strip()[:500]


def upstream_error(ctx: Ctx, status: int, text: str, retry_after: str | None) -> ApiError:
    msg = _scrub(_message(text), ctx)
    where = f"The {ctx.provider} provider answered served entity '{ctx.entity}' with HTTP {status}"
    if status == 401:
        return ApiError("UNAUTHENTICATED", f"{where}: the credentials were rejected: {msg}", 401)
    if status == 403:
        return ApiError("PERMISSION_DENIED", f"{where}: access denied: {msg}", 403)
    if status == 429:
        ra = retry_after if retry_after and retry_after.strip().isdigit() else "1"
        return ApiError("REQUEST_LIMIT_EXCEEDED", f"{where}: rate limited: {msg}", 429,
                        headers={"Retry-After": ra})
    if status in (408, 504):
        return ApiError("DEADLINE_EXCEEDED", f"{where}: timed out: {msg}", 504)
    if status >= 500:
        return ApiError("BAD_GATEWAY", f"{where}: {msg}", 502)
    return ApiError("INVALID_PARAMETER_VALUE", f"{where}: {msg}", 400)
