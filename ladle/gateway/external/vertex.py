"""Google Cloud Vertex AI <-> OpenAI: Gemini generateContent / streamGenerateContent
(alt=sse) for chat and completions, the text-embedding :predict for embeddings. The
private_key is the service account's JSON key; ladle signs a JWT with it (RS256) and trades
it for an access token, cached until it expires.

`endpoint_url` in google_cloud_vertex_ai_config (a ladle extension) replaces
https://<region>-aiplatform.googleapis.com.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from ladle.gateway.external.anthropic import split_messages
from ladle.gateway.external.base import ChunkStream, Ctx, Upstream, common_params
from ladle.schemas import llm
from ladle.schemas.errors import ApiError

FINISH = {"STOP": "stop", "MAX_TOKENS": "length", "SAFETY": "content_filter", "RECITATION": "content_filter"}
SCOPE = "https://www.googleapis.com/auth/cloud-platform"
_tokens: dict[str, tuple[str, float]] = {}
_locks: dict[str, asyncio.Lock] = {}


def build(ctx: Ctx) -> Upstream:
    project, region = ctx.required("project_id"), ctx.required("region")
    base = (ctx.cfg.get("endpoint_url") or f"https://{region}-aiplatform.googleapis.com").rstrip("/")
    prefix = f"{base}/v1/projects/{project}/locations/{region}/publishers/google/models/{ctx.model}"
    key = ctx.need("private_key")

    async def auth() -> dict[str, str]:
        return {"Authorization": f"Bearer {await access_token(key)}"}

    if ctx.task == llm.EMBEDDINGS:
        inp = ctx.data["input"]
        body = {"instances": [{"content": t} for t in ([inp] if isinstance(inp, str) else inp)]}
        return Upstream(f"{prefix}:predict", {}, body, parse=lambda d: parse_embed(d, ctx.model), auth=auth)
    url = f"{prefix}:streamGenerateContent?alt=sse" if ctx.stream else f"{prefix}:generateContent"
    return Upstream(url, {}, request(ctx), parse=lambda d: parse(d, ctx.task, ctx.model),
                    translator=lambda: Stream(ctx.task, ctx.model), auth=auth)


def request(ctx: Ctx) -> dict[str, Any]:
    system, msgs = split_messages(ctx)
    body: dict[str, Any] = {"contents": [
        {"role": "model" if m["role"] == "assistant" else "user",
         "parts": [{"text": llm.text_of(m.get("content"))}]} for m in msgs]}
    if system:
        body["systemInstruction"] = {"parts": [{"text": system}]}
    p = common_params(ctx.data)
    gen = {theirs: p[ours] for ours, theirs in (
        ("max_tokens", "maxOutputTokens"), ("temperature", "temperature"), ("top_p", "topP"),
        ("top_k", "topK"), ("stop", "stopSequences"), ("n", "candidateCount")) if ours in p}
    if gen:
        body["generationConfig"] = gen
    return body


def _usage(d: dict[str, Any]) -> dict[str, int]:
    u = d.get("usageMetadata") or {}
    return llm.usage(int(u.get("promptTokenCount", 0)), int(u.get("candidatesTokenCount", 0)))


def _text(c: dict[str, Any]) -> str:
    return "".join(p.get("text", "") for p in (c.get("content") or {}).get("parts", []))


def parse(d: dict[str, Any], task: str, model: str) -> dict[str, Any]:
    choices = [(_text(c), FINISH.get(c.get("finishReason") or "", "stop")) for c in d.get("candidates", [])]
    model = d.get("modelVersion") or model
    if task == llm.COMPLETIONS:
        return llm.completion_response(llm.new_id(task), model, choices, _usage(d))
    return llm.chat_response(llm.new_id(task), model, choices, _usage(d))


def parse_embed(d: dict[str, Any], model: str) -> dict[str, Any]:
    preds = d.get("predictions") or []
    vectors = [(p.get("embeddings") or {}).get("values", []) for p in preds]
    tokens = sum(int(((p.get("embeddings") or {}).get("statistics") or {}).get("token_count", 0)) for p in preds)
    return llm.embeddings_response(model, vectors, tokens)


class Stream(ChunkStream):
    def __init__(self, task: str, model: str) -> None:
        super().__init__(task, model)
        self.started: set[int] = set()

    def feed(self, ev: dict[str, Any]) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        if ev.get("usageMetadata"):
            self.usage = _usage(ev)
        for c in ev.get("candidates", []):
            i = int(c.get("index", 0))
            finish = FINISH.get(c["finishReason"], "stop") if c.get("finishReason") else None
            text = _text(c)
            if self.task == llm.COMPLETIONS:
                out.append(llm.completion_chunk(self.rid, self.model, self.created, i, text=text))
                if finish:
                    out.append(llm.completion_chunk(self.rid, self.model, self.created, i, finish=finish))
                continue
            if i not in self.started:
                self.started.add(i)
                out.append(llm.chat_chunk(self.rid, self.model, self.created, i, content="", role="assistant"))
            if text:
                out.append(llm.chat_chunk(self.rid, self.model, self.created, i, content=text))
            if finish:
                out.append(llm.chat_chunk(self.rid, self.model, self.created, i, finish=finish))
        return out

    def finish(self) -> list[dict[str, Any]]:
        return [llm.usage_chunk(self.rid, self.model, self.created, self.task, self.usage)]


async def access_token(key_json: str) -> str:
    """Service account JSON key -> OAuth access token (JWT bearer grant), cached until a
    minute before it expires. One refresh per key at a time (a lock per key): a burst of
    requests when the token runs out mints one token, not one each."""
    hit = _tokens.get(key_json)
    if hit and hit[1] > time.time() + 60:
        return hit[0]
    async with _locks.setdefault(key_json, asyncio.Lock()):
        hit = _tokens.get(key_json)   # another request refreshed it while this one waited
        if hit and hit[1] > time.time() + 60:
            return hit[0]
        token, expires_in = await _mint(key_json)
        _tokens[key_json] = (token, time.time() + expires_in)
        return token


async def _mint(key_json: str) -> tuple[str, int]:
    import jwt
    from cryptography.hazmat.primitives import serialization

    try:
        sa = json.loads(key_json)
        pk = serialization.load_pem_private_key(sa["private_key"].encode(), password=None)
    except (ValueError, KeyError, TypeError):
        raise ApiError("INVALID_PARAMETER_VALUE", "google_cloud_vertex_ai_config.private_key: must be a "
                       "service account JSON key with a PEM private_key", 400) from None
    token_uri = sa.get("token_uri") or "https://oauth2.googleapis.com/token"
    now = int(time.time())
    assertion = jwt.encode({"iss": sa.get("client_email"), "scope": SCOPE, "aud": token_uri,
                            "iat": now, "exp": now + 3600}, pk, algorithm="RS256",  # type: ignore[arg-type]
                           headers={"kid": sa.get("private_key_id", "")})
    r = await _post_token(token_uri, {"grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer",
                                      "assertion": assertion})
    if r.status_code != 200:
        raise ApiError("PERMISSION_DENIED", f"Google refused the service account key (HTTP {r.status_code}).", 403)
    tok = r.json()
    return tok["access_token"], int(tok.get("expires_in", 3600))


async def _post_token(token_uri: str, form: dict[str, str]) -> Any:
    import httpx

    async with httpx.AsyncClient(timeout=30) as c:
        return await c.post(token_uri, data=form)
