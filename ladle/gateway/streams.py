"""Server-sent event streams on the request path: masking PII in chunks as they pass,
assembling a stream into one answer (for output checks and payload logs), and reading the
token `usage` of an answer, unary or streamed."""

from __future__ import annotations

import copy
from typing import Any, AsyncIterator

import orjson

from ladle.gateway import pii
from ladle.support import sse


def _text_slot(choice: dict) -> tuple[dict, str] | None:
    """Where a chunk choice carries its text: (holder dict, key)."""
    delta = choice.get("delta")
    if isinstance(delta, dict) and isinstance(delta.get("content"), str):
        return delta, "content"
    if isinstance(choice.get("text"), str):
        return choice, "text"
    return None


class StreamMasker:
    """Masks PII in the choices' text of `chat.completion.chunk` / `text_completion` chunks.

    Text is held back per choice and released up to a whitespace that lies at least
    `pii.MAX_VALUE_CHARS` before the end of what is held (never inside a detected value), so a
    value split across chunks (even one with spaces, like a phone number) is seen whole. What
    is held is released, masked, with the choice's `finish_reason` chunk or before `[DONE]`.
    """

    def __init__(self) -> None:
        self.held: dict[int, str] = {}
        self.slot_kind: dict[int, str] = {}
        self.template: dict | None = None

    def event(self, ev: sse.ServerSentEvent) -> bytes:
        """What to send on for `ev` (its text masked, some of it held back)."""
        data = ev.data.strip()
        if data == "[DONE]":
            return self.close() + b"data: [DONE]\n\n"
        try:
            obj = orjson.loads(data) if data else None
        except orjson.JSONDecodeError:
            return sse.encode(ev)
        if not isinstance(obj, dict) or not isinstance(obj.get("choices"), list):
            return sse.encode(ev)
        self.template = obj
        for choice in obj["choices"]:
            if not isinstance(choice, dict):
                continue
            idx = choice.get("index", 0)
            slot = _text_slot(choice)
            held = self.held.get(idx, "")
            if slot is not None:
                holder, key = slot
                self.slot_kind[idx] = key
                held += holder[key]
            if choice.get("finish_reason"):
                emit, held = pii.mask(held), ""
            else:
                cut = release_point(held)
                emit, held = pii.mask(held[:cut]), held[cut:]
            self.held[idx] = held
            if slot is not None:
                slot[0][slot[1]] = emit
            elif emit and self.slot_kind.get(idx) == "text":
                choice["text"] = emit
            elif emit:
                choice.setdefault("delta", {})["content"] = emit
        return b"data: " + orjson.dumps(obj) + b"\n\n"

    def close(self) -> bytes:
        """What is still held, masked (at the end of the stream or before `[DONE]`)."""
        rest = {i: t for i, t in self.held.items() if t}
        self.held.clear()
        if not rest or self.template is None:
            return b""
        obj = copy.deepcopy(self.template)
        obj.pop("usage", None)
        obj["choices"] = [
            ({"index": i, "text": pii.mask(t), "finish_reason": None} if self.slot_kind.get(i) == "text"
             else {"index": i, "delta": {"content": pii.mask(t)}, "finish_reason": None})
            for i, t in sorted(rest.items())]
        return b"data: " + orjson.dumps(obj) + b"\n\n"


def release_point(s: str) -> int:
    """How much of held text `s` can be released now."""
    limit = len(s) - pii.MAX_VALUE_CHARS
    if limit <= 0:
        return 0
    cut = max(s.rfind(" ", 0, limit), s.rfind("\n", 0, limit), s.rfind("\t", 0, limit)) + 1
    if cut <= 0:
        if len(s) < 4 * pii.MAX_VALUE_CHARS:
            return 0
        cut = limit
    for m in pii.find(s):
        if m.start < cut < m.end:
            return m.start
    return cut


async def masked(chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    m = StreamMasker()
    async for ev in sse.aevents(chunks):
        out = m.event(ev)
        if out:
            yield out
    tail = m.close()
    if tail:
        yield tail


# -- assembling and usage ----------------------------------------------------------------
def stream_payloads(raw: bytes) -> list[Any]:
    """The JSON payloads of a complete SSE stream (without `[DONE]`)."""
    out = []
    for ev in sse.events(raw):
        d = ev.data.strip()
        if not d or d == "[DONE]":
            continue
        try:
            out.append(orjson.loads(d))
        except orjson.JSONDecodeError:
            out.append(d)
    return out


def assemble(payloads: list[Any]) -> Any:
    """One answer from streamed chunks: a `chat.completion` (or `text_completion`) with the
    concatenated text per choice; other streams become the list of their payloads."""
    chunks = [p for p in payloads if isinstance(p, dict) and isinstance(p.get("choices"), list)]
    if not chunks or len(chunks) != len(payloads):
        return payloads
    first = chunks[0]
    chat = first.get("object") == "chat.completion.chunk" or any(
        isinstance(c, dict) and "delta" in c for ch in chunks for c in ch["choices"])
    texts: dict[int, list[str]] = {}
    finish: dict[int, Any] = {}
    role: dict[int, str] = {}
    for ch in chunks:
        for c in ch["choices"]:
            if not isinstance(c, dict):
                continue
            i = c.get("index", 0)
            slot = _text_slot(c)
            texts.setdefault(i, [])
            if slot is not None:
                texts[i].append(slot[0][slot[1]])
            if isinstance(c.get("delta"), dict) and c["delta"].get("role"):
                role[i] = c["delta"]["role"]
            if c.get("finish_reason"):
                finish[i] = c["finish_reason"]
    out: dict[str, Any] = {k: first[k] for k in ("id", "created", "model") if k in first}
    out["object"] = "chat.completion" if chat else "text_completion"
    out["choices"] = [
        ({"index": i, "message": {"role": role.get(i, "assistant"), "content": "".join(t)},
          "finish_reason": finish.get(i)} if chat else
         {"index": i, "text": "".join(t), "finish_reason": finish.get(i)})
        for i, t in sorted(texts.items())]
    usage = next((ch["usage"] for ch in reversed(chunks) if isinstance(ch.get("usage"), dict)), None)
    if usage is not None:
        out["usage"] = usage
    return out


def usage_tokens(obj: Any) -> tuple[int, int] | None:
    """(prompt, completion) tokens from an answer's `usage` (top level, or inside a custom
    model's `predictions`; chat's prompt/completion or Responses' input/output tokens); None
    when the answer reports none."""
    if isinstance(obj, list):       # a Responses event stream: the usage its end reports
        done = [e for e in obj if isinstance(e, dict) and e.get("type") == "response.completed"]
        if done and isinstance(done[-1].get("response"), dict):
            obj = done[-1]["response"]
    for cand in (obj, obj.get("predictions") if isinstance(obj, dict) else None):
        if isinstance(cand, list) and cand and isinstance(cand[0], dict):
            cand = cand[0]
        if isinstance(cand, dict) and isinstance(cand.get("usage"), dict):
            u = cand["usage"]
            p, c, t = (u.get(k) for k in ("prompt_tokens", "completion_tokens", "total_tokens"))
            if p is None and c is None:     # a Responses API answer (a ResponsesAgent's)
                p, c = u.get("input_tokens"), u.get("output_tokens")
            p = p if isinstance(p, int) else 0
            c = c if isinstance(c, int) else (max(0, t - p) if isinstance(t, int) else 0)
            return p, c
    return None
