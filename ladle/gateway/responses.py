"""The OpenAI Responses API over chat endpoints: a Responses request (`input` as a string or
items, `instructions`, function `tools`, `function_call` / `function_call_output` items)
becomes a chat completions request, and a `chat.completion` answer becomes a `response`
object. Stateless, like Databricks': what needs stored state (`previous_response_id`,
`store: true`, `conversation`, item references) or a tool the server would run itself
(web search, file search, code interpreter, ...) is refused with a 400 naming the field.

Hand-written: no maintained library converts between the two OpenAI shapes; the field
mapping follows the `openai` client's types (openai/types/responses/)."""

from __future__ import annotations

import time
import uuid
from typing import Any

from ladle.schemas.errors import ApiError

# Sent on to the chat model under the same name.
SAME = ("temperature", "top_p", "stream", "parallel_tool_calls", "user", "top_logprobs",
        "service_tier", "safety_identifier", "prompt_cache_key")
# Accepted and echoed in the response object, nothing for the model to do.
ECHOED = ("metadata", "include", "truncation", "stream_options", "store", "instructions",
          "max_tool_calls")
MAPPED = ("input", "tools", "tool_choice", "max_output_tokens", "text", "reasoning")
STATEFUL = ("previous_response_id", "conversation", "prompt", "background")
TOOL_TYPES = ("function",)


def bad(message: str) -> ApiError:
    return ApiError("INVALID_PARAMETER_VALUE", message, 400)


def new_id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex}"


def check_stateless(req: dict[str, Any]) -> None:
    """400 for what needs state the server does not keep (also for agents served natively)."""
    for f in STATEFUL:
        if req.get(f) not in (None, False):
            raise bad(f"{f}: is not supported: serving endpoints are stateless; send the whole "
                      "conversation in 'input'")
    if req.get("store") is True:
        raise bad("store: must be false or absent: serving endpoints do not store responses")


def for_agent(req: dict[str, Any]) -> dict[str, Any]:
    """The request a ResponsesAgent gets: as sent, but `input` always a list of items (MLflow's
    ResponsesAgentRequest takes no string) and `instructions` as the first, system, item (the
    request schema has no `instructions`: the Responses API's meaning of it)."""
    check_stateless(req)
    if "input" not in req:
        raise bad("input: is required (a string or a list of input items)")
    out = dict(req)
    inp = out["input"]
    items = [{"role": "user", "content": inp}] if isinstance(inp, str) else inp
    if not isinstance(items, list):
        raise bad("input: must be a string or a list of input items")
    instructions = out.pop("instructions", None)
    if instructions is not None:
        if not isinstance(instructions, str):
            raise bad("instructions: must be a string")
        items = [{"role": "system", "content": instructions}, *items]
    out["input"] = items
    return out


def to_chat(req: dict[str, Any]) -> dict[str, Any]:
    """The chat completions body for a Responses request (without `model`)."""
    check_stateless(req)
    for k in req:
        if k not in SAME and k not in ECHOED and k not in MAPPED and k not in STATEFUL:
            raise bad(f"{k}: is not a Responses API field this server accepts")
    if "input" not in req:
        raise bad("input: is required (a string or a list of input items)")
    messages: list[dict[str, Any]] = []
    if req.get("instructions") is not None:
        if not isinstance(req["instructions"], str):
            raise bad("instructions: must be a string")
        messages.append({"role": "system", "content": req["instructions"]})
    messages += input_messages(req["input"])
    out: dict[str, Any] = {"messages": messages}
    for k in SAME:
        if req.get(k) is not None:
            out[k] = req[k]
    if req.get("top_logprobs") is not None:
        out["logprobs"] = True          # chat sends top_logprobs only with logprobs on
    if req.get("max_output_tokens") is not None:
        out["max_tokens"] = req["max_output_tokens"]
    if req.get("tools"):
        out["tools"] = chat_tools(req["tools"])
    if req.get("tool_choice") is not None:
        out["tool_choice"] = chat_tool_choice(req["tool_choice"])
    fmt = (req.get("text") or {}).get("format") if isinstance(req.get("text"), dict) else None
    if isinstance(fmt, dict) and fmt.get("type") == "json_schema":
        out["response_format"] = {"type": "json_schema", "json_schema": {
            k: fmt[k] for k in ("name", "schema", "strict", "description") if k in fmt}}
    elif isinstance(fmt, dict) and fmt.get("type") == "json_object":
        out["response_format"] = {"type": "json_object"}
    effort = (req.get("reasoning") or {}).get("effort") if isinstance(req.get("reasoning"), dict) else None
    if effort:
        out["reasoning_effort"] = effort
    return out


def input_messages(inp: Any) -> list[dict[str, Any]]:
    if isinstance(inp, str):
        return [{"role": "user", "content": inp}]
    if not isinstance(inp, list) or not inp:
        raise bad("input: must be a string or a non-empty list of input items")
    messages: list[dict[str, Any]] = []
    for i, item in enumerate(inp):
        if not isinstance(item, dict):
            raise bad(f"input[{i}]: must be an object (a message or a function call item)")
        kind = item.get("type", "message")
        if kind == "message":
            role = item.get("role")
            if role not in ("user", "assistant", "system", "developer"):
                raise bad(f"input[{i}].role: must be one of user, assistant, system, developer; got {role!r}")
            messages.append({"role": role, "content": _content(item.get("content"), f"input[{i}].content")})
        elif kind == "function_call":
            for f in ("call_id", "name", "arguments"):
                if not isinstance(item.get(f), str):
                    raise bad(f"input[{i}].{f}: is required (a string) on a function_call item")
            call = {"id": item["call_id"], "type": "function",
                    "function": {"name": item["name"], "arguments": item["arguments"]}}
            last = messages[-1] if messages else None
            if last is not None and last["role"] == "assistant" and last.get("tool_calls") is not None:
                last["tool_calls"].append(call)     # parallel calls: one assistant turn
            else:
                messages.append({"role": "assistant", "content": None, "tool_calls": [call]})
        elif kind == "function_call_output":
            if not isinstance(item.get("call_id"), str):
                raise bad(f"input[{i}].call_id: is required (a string) on a function_call_output item")
            output = item.get("output")
            if not isinstance(output, str):
                output = _content(output, f"input[{i}].output")
            messages.append({"role": "tool", "tool_call_id": item["call_id"], "content": output})
        elif kind == "reasoning":
            continue        # a model's earlier reasoning: chat models take none back
        elif kind == "item_reference":
            raise bad(f"input[{i}].type: 'item_reference' is not supported: serving endpoints are "
                      "stateless; send the item itself")
        else:
            raise bad(f"input[{i}].type: {kind!r} is not supported on a chat endpoint (message, "
                      "function_call and function_call_output are)")
    return messages


def _content(content: Any, where: str) -> Any:
    """Responses content (a string or input/output parts) as chat content: a string when it is
    all text, else chat parts."""
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        raise bad(f"{where}: must be a string or a list of content parts")
    parts: list[dict[str, Any]] = []
    for j, p in enumerate(content):
        t = p.get("type") if isinstance(p, dict) else None
        if t in ("input_text", "output_text", "text", "refusal"):
            parts.append({"type": "text", "text": p.get("text", p.get("refusal", ""))})
        elif t == "input_image" and p.get("image_url"):
            parts.append({"type": "image_url", "image_url": {"url": p["image_url"],
                                                            "detail": p.get("detail", "auto")}})
        else:
            raise bad(f"{where}[{j}].type: {t!r} is not supported on a chat endpoint "
                      "(input_text, output_text and input_image with image_url are)")
    if all(p["type"] == "text" for p in parts):
        return "".join(p["text"] for p in parts)
    return parts


def chat_tools(tools: Any) -> list[dict[str, Any]]:
    if not isinstance(tools, list):
        raise bad("tools: must be a list")
    out = []
    for i, t in enumerate(tools):
        kind = t.get("type") if isinstance(t, dict) else None
        if kind not in TOOL_TYPES:
            raise bad(f"tools[{i}].type: {kind!r} is a built-in tool this server cannot run; only "
                      "'function' tools are supported")
        if not isinstance(t.get("name"), str):
            raise bad(f"tools[{i}].name: is required")
        out.append({"type": "function", "function": {
            k: t[k] for k in ("name", "description", "parameters", "strict") if t.get(k) is not None}})
    return out


def chat_tool_choice(choice: Any) -> Any:
    if choice in ("auto", "none", "required"):
        return choice
    if isinstance(choice, dict) and choice.get("type") == "function" and isinstance(choice.get("name"), str):
        return {"type": "function", "function": {"name": choice["name"]}}
    raise bad("tool_choice: must be 'auto', 'none', 'required' or {'type': 'function', 'name': ...}")


# -- the answer ---------------------------------------------------------------------------
def usage_of(chat_usage: Any) -> dict[str, Any] | None:
    if not isinstance(chat_usage, dict):
        return None
    p = chat_usage.get("prompt_tokens") or 0
    c = chat_usage.get("completion_tokens") or 0
    return {"input_tokens": p, "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
            "output_tokens": c, "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": chat_usage.get("total_tokens") or p + c}


def skeleton(req: dict[str, Any], model: str, rid: str, created: int | None = None) -> dict[str, Any]:
    """A response object without output, echoing the request's settings."""
    return {
        "id": rid, "object": "response", "created_at": created or int(time.time()),
        "status": "in_progress", "error": None, "incomplete_details": None,
        "instructions": req.get("instructions"), "max_output_tokens": req.get("max_output_tokens"),
        "model": model, "output": [], "parallel_tool_calls": req.get("parallel_tool_calls", True),
        "previous_response_id": None, "reasoning": req.get("reasoning"), "store": False,
        "temperature": req.get("temperature"), "text": req.get("text") or {"format": {"type": "text"}},
        "tool_choice": req.get("tool_choice", "auto"), "tools": req.get("tools") or [],
        "top_p": req.get("top_p"), "truncation": req.get("truncation", "disabled"),
        "usage": None, "user": req.get("user"), "metadata": req.get("metadata") or {},
    }


def message_item(text: str, item_id: str | None = None, status: str = "completed") -> dict[str, Any]:
    return {"type": "message", "id": item_id or new_id("msg"), "role": "assistant", "status": status,
            "content": [{"type": "output_text", "text": text, "annotations": [], "logprobs": []}]}


def call_item(call_id: str, name: str, arguments: str, item_id: str | None = None,
              status: str = "completed") -> dict[str, Any]:
    return {"type": "function_call", "id": item_id or new_id("fc"), "call_id": call_id, "name": name,
            "arguments": arguments, "status": status}


def finish(resp: dict[str, Any], finish_reason: Any) -> None:
    """Set a response's final status from the chat answer's finish reason."""
    if finish_reason == "length":
        resp["status"], resp["incomplete_details"] = "incomplete", {"reason": "max_output_tokens"}
    elif finish_reason == "content_filter":
        resp["status"], resp["incomplete_details"] = "incomplete", {"reason": "content_filter"}
    else:
        resp["status"] = "completed"


def from_chat(req: dict[str, Any], answer: Any, endpoint: str) -> dict[str, Any]:
    """The response object for a `chat.completion` answer (its first choice)."""
    if not isinstance(answer, dict) or not isinstance(answer.get("choices"), list) or not answer["choices"]:
        raise ApiError("BAD_RESPONSE", "The served model did not answer with a chat completion "
                       "(no 'choices'): it cannot be read as a Responses API answer", 502)
    choice = answer["choices"][0] if isinstance(answer["choices"][0], dict) else {}
    msg = choice.get("message") if isinstance(choice.get("message"), dict) else {}
    resp = skeleton(req, answer.get("model") or endpoint, new_id("resp"),
                    answer.get("created") if isinstance(answer.get("created"), int) else None)
    content = msg.get("content")
    if isinstance(content, list):
        content = "".join(p.get("text", "") for p in content if isinstance(p, dict))
    if content:
        resp["output"].append(message_item(content))
    calls = msg.get("tool_calls") if isinstance(msg.get("tool_calls"), list) else []
    for tc in (c for c in calls if isinstance(c, dict)):
        fn = tc.get("function") if isinstance(tc.get("function"), dict) else {}
        resp["output"].append(call_item(tc.get("id") or new_id("call"), fn.get("name", ""),
                                        fn.get("arguments") or ""))
    finish(resp, choice.get("finish_reason"))
    resp["usage"] = usage_of(answer.get("usage"))
    return resp
