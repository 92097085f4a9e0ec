"""Anthropic Messages API <-> OpenAI chat: system prompt, tools and tool calls, stop
sequences, usage; stream events (message_start, content_block_*, message_delta) become
`chat.completion.chunk`s."""

from __future__ import annotations

import json
from typing import Any

from ladle.gateway.external.base import ChunkStream, Ctx, Upstream, common_params, not_supported
from ladle.schemas import llm

VERSION = "2023-06-01"
FINISH = {"end_turn": "stop", "stop_sequence": "stop", "max_tokens": "length", "tool_use": "tool_calls"}
DEFAULT_MAX_TOKENS = 1024


def build(ctx: Ctx) -> Upstream:
    if ctx.task == llm.EMBEDDINGS:
        raise not_supported(ctx)
    key = ctx.need("anthropic_api_key")
    base = (ctx.cfg.get("anthropic_api_base") or "https://api.anthropic.com").rstrip("/")
    return Upstream(f"{base}/v1/messages", {"x-api-key": key, "anthropic-version": VERSION},
                    request(ctx), parse=lambda d: parse(d, ctx.task, ctx.model),
                    translator=lambda: Stream(ctx.task, ctx.model))


def split_messages(ctx: Ctx) -> tuple[str, list[dict[str, Any]]]:
    """OpenAI messages -> (system text, [{role: user|assistant, content}]) for chat; a prompt
    becomes one user message for completions."""
    if ctx.task == llm.COMPLETIONS:
        p = ctx.data["prompt"]
        return "", [{"role": "user", "content": p if isinstance(p, str) else "\n".join(p)}]
    system, out = [], []
    for m in ctx.data["messages"]:
        if m["role"] in ("system", "developer"):
            system.append(llm.text_of(m.get("content")))
        else:
            out.append(m)
    return "\n".join(system), out


def request(ctx: Ctx) -> dict[str, Any]:
    system, msgs = split_messages(ctx)
    p = common_params(ctx.data)
    body: dict[str, Any] = {"model": ctx.model, "max_tokens": p.pop("max_tokens", DEFAULT_MAX_TOKENS),
                            "messages": [_message(m) for m in msgs]}
    if system:
        body["system"] = system
    for ours, theirs in (("temperature", "temperature"), ("top_p", "top_p"), ("top_k", "top_k"),
                         ("stop", "stop_sequences")):
        if ours in p:
            body[theirs] = p[ours]
    if ctx.data.get("tools"):
        body["tools"] = [{"name": t["function"]["name"], "description": t["function"].get("description", ""),
                          "input_schema": t["function"].get("parameters") or {"type": "object"}}
                         for t in ctx.data["tools"] if t.get("type") == "function"]
        choice = ctx.data.get("tool_choice")
        if choice == "required":
            body["tool_choice"] = {"type": "any"}
        elif isinstance(choice, dict) and choice.get("function"):
            body["tool_choice"] = {"type": "tool", "name": choice["function"]["name"]}
    if ctx.stream:
        body["stream"] = True
    return body


def _message(m: dict[str, Any]) -> dict[str, Any]:
    if m["role"] == "tool":
        return {"role": "user", "content": [{"type": "tool_result", "tool_use_id": m.get("tool_call_id", ""),
                                             "content": llm.text_of(m.get("content"))}]}
    if m.get("tool_calls"):
        blocks: list[dict[str, Any]] = []
        if m.get("content"):
            blocks.append({"type": "text", "text": llm.text_of(m["content"])})
        for c in m["tool_calls"]:
            blocks.append({"type": "tool_use", "id": c.get("id", ""), "name": c["function"]["name"],
                           "input": json.loads(c["function"].get("arguments") or "{}")})
        return {"role": "assistant", "content": blocks}
    return {"role": m["role"], "content": llm.text_of(m.get("content"))}


def parse(d: dict[str, Any], task: str, model: str) -> dict[str, Any]:
    text = "".join(b.get("text", "") for b in d.get("content", []) if b.get("type") == "text")
    calls = [{"id": b["id"], "type": "function",
              "function": {"name": b["name"], "arguments": json.dumps(b.get("input", {}))}}
             for b in d.get("content", []) if b.get("type") == "tool_use"]
    u = d.get("usage") or {}
    usage = llm.usage(int(u.get("input_tokens", 0)), int(u.get("output_tokens", 0)))
    finish = FINISH.get(d.get("stop_reason") or "", "stop")
    rid = d.get("id") or llm.new_id(task)
    if task == llm.COMPLETIONS:
        return llm.completion_response(rid, d.get("model", model), [(text, finish)], usage)
    return llm.chat_response(rid, d.get("model", model), [(text, finish)], usage, tool_calls=calls or None)


class Stream(ChunkStream):
    def __init__(self, task: str, model: str) -> None:
        super().__init__(task, model)
        self.prompt = self.completion = 0
        self.tools: dict[int, int] = {}

    def feed(self, ev: dict[str, Any]) -> list[dict[str, Any]]:
        t = ev.get("type")
        if t == "message_start":
            msg = ev.get("message") or {}
            self.rid = msg.get("id") or self.rid
            self.model = msg.get("model") or self.model
            self.prompt = int((msg.get("usage") or {}).get("input_tokens", 0))
            return [] if self.task == llm.COMPLETIONS else [self._chunk(role="assistant", content="")]
        if t == "content_block_start" and (ev.get("content_block") or {}).get("type") == "tool_use":
            b = ev["content_block"]
            i = self.tools.setdefault(ev.get("index", 0), len(self.tools))
            return [self._chunk(tool_calls=[{"index": i, "id": b.get("id"), "type": "function",
                                             "function": {"name": b.get("name"), "arguments": ""}}])]
        if t == "content_block_delta":
            delta = ev.get("delta") or {}
            if delta.get("type") == "text_delta":
                return [self._chunk(content=delta.get("text", ""))]
            if delta.get("type") == "input_json_delta":
                i = self.tools.get(ev.get("index", 0), 0)
                return [self._chunk(tool_calls=[{"index": i, "function": {
                    "arguments": delta.get("partial_json", "")}}])]
        if t == "message_delta":
            self.completion = int((ev.get("usage") or {}).get("output_tokens", self.completion))
            reason = (ev.get("delta") or {}).get("stop_reason")
            if reason:
                return [self._chunk(finish=FINISH.get(reason, "stop"))]
        if t == "error":
            err = ev.get("error") or {}
            from ladle.schemas.errors import ApiError

            raise ApiError("BAD_GATEWAY", f"anthropic stream error: {err.get('message', err)}", 502)
        return []

    def finish(self) -> list[dict[str, Any]]:
        return [llm.usage_chunk(self.rid, self.model, self.created, self.task,
                                llm.usage(self.prompt, self.completion))]
