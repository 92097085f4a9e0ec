"""What a provider adapter hands the external caller: one upstream HTTP request, and how to
turn the upstream's answer (JSON, or a stream of events) into OpenAI shapes."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable, Protocol

from ladle.schemas import llm
from ladle.schemas.errors import ApiError
from ladle.schemas.llm import bad


class StreamTranslator(Protocol):
    def feed(self, event: dict[str, Any]) -> list[dict[str, Any]]: ...

    def finish(self) -> list[dict[str, Any]]: ...


class ChunkStream:
    """The part every provider's stream translator shares: one response id and creation time
    for the whole stream, and OpenAI chunks of the requested task."""

    def __init__(self, task: str, model: str) -> None:
        self.task, self.model = task, model
        self.rid, self.created = llm.new_id(task), int(time.time())
        self.usage = llm.usage(0, 0)

    def _chunk(self, content: str | None = None, finish: str | None = None, role: str | None = None,
               **kw: Any) -> dict[str, Any]:
        if self.task == llm.COMPLETIONS:
            return llm.completion_chunk(self.rid, self.model, self.created, text=content or "", finish=finish)
        return llm.chat_chunk(self.rid, self.model, self.created, content=content, finish=finish, role=role, **kw)


@dataclass
class Upstream:
    url: str
    headers: dict[str, str]
    body: dict[str, Any] | None = None
    parse: Callable[[dict[str, Any]], dict[str, Any]] = lambda d: d
    translator: Callable[[], StreamTranslator] | None = None   # None: pass OpenAI chunks through
    decode: str = "sse"                                          # sse | aws-eventstream
    content: bytes | None = None                                 # exact bytes (signed requests)
    auth: Callable[[], Awaitable[dict[str, str]]] | None = None  # late headers (OAuth tokens)
    method: str = "POST"


@dataclass
class Ctx:
    """One request to one external served entity."""

    entity: str
    provider: str
    model: str                      # the provider's model name
    task: str
    cfg: dict[str, Any]             # the <provider>_config
    data: dict[str, Any]            # the OpenAI-shaped request body (validated)
    resolve: Callable[[str], str]   # a {{secrets/..}} reference or a sealed plaintext -> the value
    secrets_used: list[str] = field(default_factory=list)

    def value(self, obj: dict[str, Any], name: str) -> str | None:
        """`name` (a secret reference) or `name_plaintext` (sealed at rest) of obj, resolved."""
        raw = obj.get(name) or obj.get(name + "_plaintext")
        if not raw:
            return None
        v = self.resolve(str(raw))
        self.secrets_used.append(v)
        return v

    def secret(self, name: str) -> str | None:
        return self.value(self.cfg, name)

    @property
    def stream(self) -> bool:
        return self.data.get("stream") is True

    def need(self, field_name: str) -> str:
        v = self.secret(field_name)
        if not v:
            raise bad(f"external_model.{self.provider} config: {field_name} or {field_name}_plaintext is required")
        return v

    def required(self, key: str) -> str:
        v = self.cfg.get(key)
        if not v:
            raise bad(f"external_model: {key} is required for provider '{self.provider}'")
        return str(v)


def not_supported(ctx: Ctx) -> ApiError:
    return ApiError("INVALID_PARAMETER_VALUE",
                    f"Provider '{ctx.provider}' does not support task {ctx.task} in ladle.", 400)


OPENAI_ONLY = ("client_request_id", "usage_context", "extra_params", "model", "stream_options")


def common_params(data: dict[str, Any]) -> dict[str, Any]:
    """max_tokens, temperature, top_p, top_k, stop, n from the OpenAI-shaped body."""
    keys = ("max_tokens", "temperature", "top_p", "top_k", "stop", "n")
    out = {k: data[k] for k in keys if data.get(k) is not None}
    if isinstance(out.get("stop"), str):
        out["stop"] = [out["stop"]]
    out.update((data.get("extra_params") or {}))
    return out
