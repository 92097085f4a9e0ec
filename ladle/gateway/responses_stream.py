"""Responses API event streams: a chat endpoint's `chat.completion.chunk` stream as the
Responses events (`response.created`, `response.output_item.added`,
`response.content_part.added`, `response.output_text.delta`, `response.output_text.done`,
`response.function_call_arguments.delta/done`, `response.output_item.done`,
`response.completed`; a failure as an `error` event), and a `ResponsesAgent`'s own stream
completed with the lifecycle events it leaves out (MLflow agents yield deltas and
`response.output_item.done` only; the `openai` client's stream reader needs
`response.created` first and each item added before its deltas).

Hand-written: the event order and fields follow the `openai` client's stream accumulator
(openai/lib/streaming/responses/_responses.py)."""

from __future__ import annotations

from contextlib import aclosing
from typing import Any, AsyncIterator, Callable

import orjson

from ladle.gateway import responses as rs
from ladle.support import sse


class _Events:
    def __init__(self) -> None:
        self.seq = 0

    def emit(self, ev: dict[str, Any]) -> bytes:
        ev["sequence_number"] = self.seq
        self.seq += 1
        return b"event: " + ev["type"].encode() + b"\ndata: " + orjson.dumps(ev) + b"\n\n"

    def error(self, message: str, code: str = "server_error") -> bytes:
        return self.emit({"type": "error", "code": code, "message": message, "param": None})


def _payloads(ev: sse.ServerSentEvent) -> Any:
    d = ev.data.strip()
    if not d:
        return None
    if d == "[DONE]":
        return "[DONE]"
    try:
        return orjson.loads(d)
    except orjson.JSONDecodeError:
        return {"error": {"message": f"the served model sent an unreadable event: {d[:200]}"}}


def _is_error(obj: Any) -> bool:
    """An error sent in a stream: OpenAI's `{"error": ...}` or ladle's `{"error_code", "message"}`."""
    return isinstance(obj, dict) and ("error" in obj or "error_code" in obj)


def _error_text(obj: dict[str, Any]) -> str:
    err = obj.get("error")
    if isinstance(err, dict):
        return str(err.get("message") or err)
    return str(obj.get("message") or err or obj)


class ChatToResponses:
    """Turns one chat chunk stream into Responses events (text in one message item, each tool
    call in a function_call item, in the order they start)."""

    def __init__(self, req: dict[str, Any], endpoint: str) -> None:
        self.ev = _Events()
        self.resp = rs.skeleton(req, endpoint, rs.new_id("resp"))
        self.items: list[dict[str, Any]] = []      # output items, in output_index order
        self.text_at: int | None = None             # output index of the message item
        self.calls: dict[int, int] = {}             # chat tool call index -> output index
        self.finish_reason: Any = None
        self.usage: Any = None

    def start(self) -> bytes:
        return self.ev.emit({"type": "response.created", "response": dict(self.resp, output=[])})

    def chunk(self, obj: Any) -> bytes:
        if _is_error(obj) or not isinstance(obj, dict) or not isinstance(obj.get("choices"), list):
            raise _Failed(_error_text(obj) if isinstance(obj, dict) else "the served model sent no chat chunk")
        if obj.get("model"):
            self.resp["model"] = obj["model"]
        if isinstance(obj.get("usage"), dict):
            self.usage = obj["usage"]
        out = b""
        for c in obj["choices"]:
            if not isinstance(c, dict) or c.get("index", 0) != 0:
                continue
            delta = c.get("delta") if isinstance(c.get("delta"), dict) else {}
            text = delta.get("content")
            if isinstance(text, str) and text:
                out += self._text(text)
            for tc in delta.get("tool_calls") if isinstance(delta.get("tool_calls"), list) else []:
                out += self._call(tc)
            if c.get("finish_reason"):
                self.finish_reason = c["finish_reason"]
        return out

    def _text(self, text: str) -> bytes:
        out = b""
        if self.text_at is None:
            self.text_at = len(self.items)
            item = rs.message_item("", status="in_progress")
            item["content"] = []
            self.items.append(item)
            out += self.ev.emit({"type": "response.output_item.added", "output_index": self.text_at,
                                 "item": dict(item, content=[])})
            out += self.ev.emit({"type": "response.content_part.added", "item_id": item["id"],
                                 "output_index": self.text_at, "content_index": 0,
                                 "part": {"type": "output_text", "text": "", "annotations": []}})
            item["content"] = [{"type": "output_text", "text": "", "annotations": [], "logprobs": []}]
        item = self.items[self.text_at]
        item["content"][0]["text"] += text
        return out + self.ev.emit({"type": "response.output_text.delta", "item_id": item["id"],
                                   "output_index": self.text_at, "content_index": 0, "delta": text,
                                   "logprobs": []})

    def _call(self, tc: Any) -> bytes:
        if not isinstance(tc, dict):
            return b""
        idx = tc.get("index", 0)
        fn = tc.get("function") if isinstance(tc.get("function"), dict) else {}
        out = b""
        if idx not in self.calls:
            self.calls[idx] = len(self.items)
            item = rs.call_item(tc.get("id") or rs.new_id("call"), fn.get("name") or "", "",
                                status="in_progress")
            self.items.append(item)
            out += self.ev.emit({"type": "response.output_item.added", "output_index": self.calls[idx],
                                 "item": dict(item)})
        at = self.calls[idx]
        item = self.items[at]
        if fn.get("name") and not item["name"]:
            item["name"] = fn["name"]
        args = fn.get("arguments")
        if isinstance(args, str) and args:
            item["arguments"] += args
            out += self.ev.emit({"type": "response.function_call_arguments.delta", "item_id": item["id"],
                                 "output_index": at, "delta": args})
        return out

    def end(self) -> bytes:
        out = b""
        for at, item in enumerate(self.items):
            item["status"] = "completed"
            if item["type"] == "message":
                part = item["content"][0]
                out += self.ev.emit({"type": "response.output_text.done", "item_id": item["id"],
                                     "output_index": at, "content_index": 0, "text": part["text"],
                                     "logprobs": []})
                out += self.ev.emit({"type": "response.content_part.done", "item_id": item["id"],
                                     "output_index": at, "content_index": 0,
                                     "part": {"type": "output_text", "text": part["text"], "annotations": []}})
            else:
                out += self.ev.emit({"type": "response.function_call_arguments.done", "item_id": item["id"],
                                     "output_index": at, "name": item["name"], "arguments": item["arguments"]})
            out += self.ev.emit({"type": "response.output_item.done", "output_index": at, "item": item})
        self.resp["output"] = self.items
        rs.finish(self.resp, self.finish_reason)
        self.resp["usage"] = rs.usage_of(self.usage)
        return out + self.ev.emit({"type": "response.completed", "response": self.resp})


class _Failed(Exception):
    pass


async def _translate(chunks: AsyncIterator[bytes], step: Callable[[Any], bytes],
                     fail: Callable[[str], bytes], end: Callable[[], bytes]) -> AsyncIterator[bytes]:
    """Each upstream SSE payload through `step` until `[DONE]`; then `end()`, or `fail(message)`
    when the upstream reported an error."""
    try:
        async for ev in sse.aevents(chunks):
            obj = _payloads(ev)
            if obj is None:
                continue
            if obj == "[DONE]":
                break
            out = step(obj)
            if out:
                yield out
    except _Failed as e:
        yield fail(str(e))
        return
    yield end()


async def chat_to_responses(chunks: AsyncIterator[bytes], req: dict[str, Any],
                            endpoint: str) -> AsyncIterator[bytes]:
    t = ChatToResponses(req, endpoint)
    yield t.start()
    async with aclosing(_translate(chunks, t.chunk, t.ev.error, t.end)) as out:
        async for b in out:
            yield b


class AgentStream:
    """Completes a ResponsesAgent's event stream: `response.created` first, each item added
    (a message with its content part) before its first delta, indexes and sequence numbers
    filled in, `response.completed` with the finished items last."""

    def __init__(self, req: dict[str, Any], endpoint: str) -> None:
        self.ev = _Events()
        self.resp = rs.skeleton(req, endpoint, rs.new_id("resp"))
        self.index: dict[str, int] = {}      # item id -> output index
        self.done: dict[int, dict[str, Any]] = {}
        self.texts: dict[str, str] = {}
        self.created = False
        self.completed = False

    def _start(self) -> bytes:
        if self.created:
            return b""
        self.created = True
        return self.ev.emit({"type": "response.created", "response": dict(self.resp, output=[])})

    def _added(self, item_id: str, item: dict[str, Any] | None) -> bytes:
        if item_id in self.index:
            return b""
        at = self.index[item_id] = len(self.index)
        if item is None or item.get("type") == "message":
            item = rs.message_item("", item_id, status="in_progress")
            item["content"] = []
            out = self.ev.emit({"type": "response.output_item.added", "output_index": at, "item": item})
            return out + self.ev.emit({"type": "response.content_part.added", "item_id": item_id,
                                       "output_index": at, "content_index": 0,
                                       "part": {"type": "output_text", "text": "", "annotations": []}})
        return self.ev.emit({"type": "response.output_item.added", "output_index": at, "item": item})

    def event(self, obj: Any) -> bytes:
        if _is_error(obj) and not (isinstance(obj, dict) and obj.get("type") == "error"):
            raise _Failed(_error_text(obj))
        if not isinstance(obj, dict) or not isinstance(obj.get("type"), str):
            return b""
        kind = obj["type"]
        out = b""
        if kind == "response.created":
            self.created = True
            self.resp = obj.get("response") or self.resp
            return self.ev.emit(obj)
        out += self._start()
        if kind == "error":
            return out + self.ev.emit(obj)
        if kind == "response.output_text.delta":
            item_id = obj.get("item_id") or "msg"
            out += self._added(item_id, None)
            self.texts[item_id] = self.texts.get(item_id, "") + (obj.get("delta") or "")
            obj = {"item_id": item_id, "output_index": self.index[item_id], "content_index": 0,
                   "logprobs": [], **obj}
        elif kind == "response.output_item.added" and isinstance(obj.get("item"), dict):
            item_id = obj["item"].get("id") or obj["item"].get("call_id") or rs.new_id("item")
            if item_id in self.index:
                return out
            self.index[item_id] = len(self.index)
            obj = {"output_index": self.index[item_id], **obj}
        elif kind == "response.output_item.done" and isinstance(obj.get("item"), dict):
            item = obj["item"]
            item_id = item.get("id") or item.get("call_id") or rs.new_id("item")
            if item_id not in self.index:
                out += self._added(item_id, dict(item, status="in_progress") if item.get("type") != "message"
                                   else None)
            at = self.index[item_id]
            if item.get("type") == "message" and item_id in self.texts:
                text = "".join(p.get("text", "") for p in item.get("content") or [] if isinstance(p, dict))
                out += self.ev.emit({"type": "response.output_text.done", "item_id": item_id,
                                     "output_index": at, "content_index": 0, "text": text, "logprobs": []})
            self.done[at] = item
            obj = {"output_index": at, **obj}
        elif kind == "response.completed":
            self.completed = True
        return out + self.ev.emit(obj)

    def end(self) -> bytes:
        out = self._start()
        if self.completed:
            return out
        self.resp["output"] = [self.done[i] for i in sorted(self.done)]
        if self.resp.get("status") in (None, "in_progress"):
            self.resp["status"] = "completed"
        return out + self.ev.emit({"type": "response.completed", "response": self.resp})


async def agent_responses(chunks: AsyncIterator[bytes], req: dict[str, Any],
                          endpoint: str) -> AsyncIterator[bytes]:
    t = AgentStream(req, endpoint)
    async with aclosing(_translate(chunks, t.event, lambda m: t._start() + t.ev.error(m), t.end)) as out:
        async for b in out:
            yield b
