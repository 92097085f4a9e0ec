"""Cohere v2 API <-> OpenAI: /v2/chat (and its content-delta stream) for chat and
completions, /v2/embed for embeddings."""

from __future__ import annotations

from typing import Any

from ladle.gateway.external.anthropic import split_messages
from ladle.gateway.external.base import ChunkStream, Ctx, Upstream, common_params
from ladle.schemas import llm

FINISH = {"COMPLETE": "stop", "STOP_SEQUENCE": "stop", "MAX_TOKENS": "length", "TOOL_CALL": "tool_calls"}


def build(ctx: Ctx) -> Upstream:
    key = ctx.need("cohere_api_key")
    base = (ctx.cfg.get("cohere_api_base") or "https://api.cohere.com").rstrip("/")
    headers = {"Authorization": f"Bearer {key}"}
    if ctx.task == llm.EMBEDDINGS:
        inp = ctx.data["input"]
        body = {"model": ctx.model, "texts": [inp] if isinstance(inp, str) else inp,
                "input_type": (ctx.data.get("extra_params") or {}).get("input_type", "search_document"),
                "embedding_types": ["float"]}
        return Upstream(f"{base}/v2/embed", headers, body, parse=lambda d: parse_embed(d, ctx.model))
    system, msgs = split_messages(ctx)
    messages = ([{"role": "system", "content": system}] if system else []) + [
        {"role": m["role"], "content": llm.text_of(m.get("content"))} for m in msgs if m["role"] != "tool"]
    p = common_params(ctx.data)
    body = {"model": ctx.model, "messages": messages}
    for ours, theirs in (("max_tokens", "max_tokens"), ("temperature", "temperature"), ("top_p", "p"),
                         ("top_k", "k"), ("stop", "stop_sequences")):
        if ours in p:
            body[theirs] = p[ours]
    if ctx.stream:
        body["stream"] = True
    return Upstream(f"{base}/v2/chat", headers, body, parse=lambda d: parse_chat(d, ctx.task, ctx.model),
                    translator=lambda: Stream(ctx.task, ctx.model))


def _usage(u: dict[str, Any] | None) -> dict[str, int]:
    tokens = (u or {}).get("tokens") or (u or {}).get("billed_units") or {}
    return llm.usage(int(tokens.get("input_tokens", 0)), int(tokens.get("output_tokens", 0)))


def parse_chat(d: dict[str, Any], task: str, model: str) -> dict[str, Any]:
    content = (d.get("message") or {}).get("content") or []
    text = "".join(c.get("text", "") for c in content if c.get("type") == "text")
    finish = FINISH.get(d.get("finish_reason") or "", "stop")
    rid = d.get("id") or llm.new_id(task)
    if task == llm.COMPLETIONS:
        return llm.completion_response(rid, model, [(text, finish)], _usage(d.get("usage")))
    return llm.chat_response(rid, model, [(text, finish)], _usage(d.get("usage")))


def parse_embed(d: dict[str, Any], model: str) -> dict[str, Any]:
    emb = d.get("embeddings") or {}
    vectors = emb.get("float") if isinstance(emb, dict) else emb
    billed = ((d.get("meta") or {}).get("billed_units") or {}).get("input_tokens", 0)
    return llm.embeddings_response(model, vectors or [], int(billed))


class Stream(ChunkStream):
    def feed(self, ev: dict[str, Any]) -> list[dict[str, Any]]:
        t = ev.get("type")
        if t == "message-start":
            self.rid = ev.get("id") or self.rid
            return [] if self.task == llm.COMPLETIONS else [self._chunk(content="", role="assistant")]
        if t == "content-delta":
            text = (((ev.get("delta") or {}).get("message") or {}).get("content") or {}).get("text", "")
            return [self._chunk(content=text)]
        if t == "message-end":
            delta = ev.get("delta") or {}
            self.usage = _usage(delta.get("usage"))
            return [self._chunk(finish=FINISH.get(delta.get("finish_reason") or "", "stop"))]
        return []

    def finish(self) -> list[dict[str, Any]]:
        return [llm.usage_chunk(self.rid, self.model, self.created, self.task, self.usage)]
