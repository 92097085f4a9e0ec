"""OpenAI-shaped LLM bodies (the query fields `messages`, `prompt`, `input`, `max_tokens`, ...
and the chat/completions/embeddings answers of Databricks' QueryEndpointResponse): request
checks that run before any model work, and the small builders every LLM entity kind uses
for responses and Server-Sent Events. Stdlib only: replica processes import it."""

from __future__ import annotations

import base64
import json
import struct
import time
import uuid
from typing import Any

from ladle.schemas.errors import ApiError

CHAT, COMPLETIONS, EMBEDDINGS = "llm/v1/chat", "llm/v1/completions", "llm/v1/embeddings"
TASKS = (CHAT, COMPLETIONS, EMBEDDINGS)
ROLES = ("system", "user", "assistant", "tool", "developer")
SSE_DONE = b"data: [DONE]\n\n"
INPUT_KEY = {CHAT: "messages", COMPLETIONS: "prompt", EMBEDDINGS: "input"}


def bad(message: str) -> ApiError:
    return ApiError("INVALID_PARAMETER_VALUE", message, 400)


def parse_body(body: bytes) -> dict[str, Any]:
    try:
        data = json.loads(body or b"{}")
    except ValueError as e:
        raise bad(f"Malformed JSON in request body: {e}") from None
    if not isinstance(data, dict):
        raise bad("The request body must be a JSON object")
    return data


def check_request(task: str, data: dict[str, Any]) -> None:
    """400 naming the problem; nothing is sent to a model before this passes."""
    want = INPUT_KEY[task]
    others = [k for k in INPUT_KEY.values() if k != want and k in data]
    if want not in data:
        hint = f" (got '{others[0]}': this endpoint serves {task}, not that task)" if others else ""
        raise bad(f"'{want}' is required for a {task} endpoint{hint}")
    if others:
        raise bad(f"'{others[0]}' is not accepted by a {task} endpoint; send '{want}' only")
    if task == CHAT:
        _check_messages(data["messages"])
    elif task == COMPLETIONS:
        _check_texts("prompt", data["prompt"])
    else:
        _check_texts("input", data["input"])
        fmt = data.get("encoding_format", "float")
        if fmt not in ("float", "base64"):
            raise bad(f"encoding_format: must be 'float' or 'base64', got {fmt!r}")
        return
    _check_params(data)


def _check_messages(msgs: Any) -> None:
    if not isinstance(msgs, list) or not msgs:
        raise bad("messages: must be a non-empty list of {role, content} objects")
    for i, m in enumerate(msgs):
        if not isinstance(m, dict):
            raise bad(f"messages[{i}]: must be an object with 'role' and 'content'")
        role = m.get("role")
        if role not in ROLES:
            raise bad(f"messages[{i}].role: must be one of {', '.join(ROLES)}, got {role!r}")
        content = m.get("content")
        if content is None and not m.get("tool_calls"):
            raise bad(f"messages[{i}].content: is required")
        if content is not None and not isinstance(content, (str, list)):
            raise bad(f"messages[{i}].content: must be a string or a list of content parts")


def _check_texts(field: str, v: Any) -> None:
    if isinstance(v, str):
        return
    if isinstance(v, list) and v and all(isinstance(x, str) for x in v):
        return
    raise bad(f"{field}: must be a string or a non-empty list of strings")


def _check_params(d: dict[str, Any]) -> None:
    def num(k: str, lo: float, hi: float, integer: bool = False, lo_open: bool = False) -> None:
        v = d.get(k)
        if v is None:
            return
        ok_type = isinstance(v, int) if integer else isinstance(v, (int, float))
        if isinstance(v, bool) or not ok_type or v > hi or v < lo or (lo_open and v == lo):
            kind = "an integer" if integer else "a number"
            raise bad(f"{k}: must be {kind} in {'(' if lo_open else '['}{lo:g}, {hi:g}], got {v!r}")

    num("max_tokens", 1, 2**31, integer=True)
    num("temperature", 0, 2)
    num("top_p", 0, 1, lo_open=True)
    num("n", 1, 5, integer=True)
    num("top_k", 1, 2**31, integer=True)
    stop = d.get("stop")
    if stop is not None and not isinstance(stop, str) and not (
            isinstance(stop, list) and all(isinstance(s, str) for s in stop)):
        raise bad("stop: must be a string or a list of strings")
    if "stream" in d and not isinstance(d["stream"], bool):
        raise bad("stream: must be true or false")


def stops(d: dict[str, Any]) -> list[str]:
    s = d.get("stop")
    return [s] if isinstance(s, str) else [x for x in (s or []) if x]


def wants_stream(data: dict[str, Any]) -> bool:
    return data.get("stream") is True


def include_usage(data: dict[str, Any]) -> bool:
    return bool((data.get("stream_options") or {}).get("include_usage"))


def new_id(task: str) -> str:
    prefix = {CHAT: "chatcmpl", COMPLETIONS: "cmpl", EMBEDDINGS: "emb"}[task]
    return f"{prefix}-{uuid.uuid4().hex}"


def usage(prompt: int, completion: int | None = None) -> dict[str, int]:
    if completion is None:
        return {"prompt_tokens": prompt, "total_tokens": prompt}
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


def chat_response(rid: str, model: str, choices: list[tuple[str, str]], u: dict, created: int | None = None,
                  tool_calls: list | None = None) -> dict[str, Any]:
    out = []
    for i, (text, finish) in enumerate(choices):
        msg: dict[str, Any] = {"role": "assistant", "content": text}
        if tool_calls and i == 0:
            msg["tool_calls"] = tool_calls
        out.append({"index": i, "message": msg, "finish_reason": finish, "logprobs": None})
    return {"id": rid, "object": "chat.completion", "created": created or int(time.time()),
            "model": model, "choices": out, "usage": u}


def completion_response(rid: str, model: str, choices: list[tuple[str, str]], u: dict) -> dict[str, Any]:
    return {"id": rid, "object": "text_completion", "created": int(time.time()), "model": model,
            "choices": [{"index": i, "text": t, "finish_reason": f, "logprobs": None}
                        for i, (t, f) in enumerate(choices)],
            "usage": u}


def chat_chunk(rid: str, model: str, created: int, index: int = 0, content: str | None = None,
               role: str | None = None, finish: str | None = None, u: dict | None = None,
               tool_calls: list | None = None) -> dict[str, Any]:
    delta: dict[str, Any] = {}
    if role:
        delta["role"] = role
    if content is not None:
        delta["content"] = content
    if tool_calls:
        delta["tool_calls"] = tool_calls
    out: dict[str, Any] = {"id": rid, "object": "chat.completion.chunk", "created": created, "model": model,
                           "choices": [{"index": index, "delta": delta, "finish_reason": finish,
                                        "logprobs": None}]}
    if u is not None:
        out["usage"] = u
    return out


def completion_chunk(rid: str, model: str, created: int, index: int = 0, text: str = "",
                     finish: str | None = None) -> dict[str, Any]:
    return {"id": rid, "object": "text_completion", "created": created, "model": model,
            "choices": [{"index": index, "text": text, "finish_reason": finish, "logprobs": None}]}


def usage_chunk(rid: str, model: str, created: int, task: str, u: dict) -> dict[str, Any]:
    obj = "chat.completion.chunk" if task == CHAT else "text_completion"
    return {"id": rid, "object": obj, "created": created, "model": model, "choices": [], "usage": u}


def embeddings_response(model: str, vectors: list[list[float]], prompt_tokens: int,
                        fmt: str = "float") -> dict[str, Any]:
    data = [{"object": "embedding", "index": i, "embedding": encode_vector(v, fmt)}
            for i, v in enumerate(vectors)]
    return {"object": "list", "model": model, "data": data, "usage": usage(prompt_tokens)}


def encode_vector(v: list[float], fmt: str) -> list[float] | str:
    if fmt == "base64":
        return base64.b64encode(struct.pack(f"<{len(v)}f", *v)).decode()
    return [float(x) for x in v]


def sse(obj: Any) -> bytes:
    return b"data: " + json.dumps(obj, separators=(",", ":"), default=_default).encode() + b"\n\n"


def _default(o: Any) -> Any:
    for attr in ("to_dict", "model_dump"):
        f = getattr(o, attr, None)
        if callable(f):
            return f()
    if hasattr(o, "__dataclass_fields__"):
        import dataclasses

        return dataclasses.asdict(o)
    return str(o)


def text_of(content: Any) -> str:
    """The text of a message content: a string or a list of {type: text, text} parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content if isinstance(p, dict))
    return ""
