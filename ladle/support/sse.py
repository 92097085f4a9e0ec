"""The one server-sent event reader of ladle (the gateway, the external providers and the
CLI), on httpx-sse: its `EventSource` parses by the WHATWG rules (`data:` lines joined with
newlines, one leading space dropped, `event:`/`id:`/`retry:` kept, `:` comments skipped, any
of CRLF/CR/LF ends a line, UTF-8 decoded across chunk boundaries). Byte streams that do not
come from httpx are read by wrapping them in an `httpx.Response`. An event left open at the
end of a stream (no blank line after it) is kept, so a provider that ends abruptly loses
nothing."""

from __future__ import annotations

from typing import AsyncIterable, AsyncIterator, Iterator

import httpx
from httpx_sse import EventSource, ServerSentEvent

__all__ = ["ServerSentEvent", "aevents", "encode", "events", "response_events"]

_SSE = {"content-type": "text/event-stream"}
_END = b"\n\n"   # ends an event left open when the stream stops


async def aevents(chunks: AsyncIterable[bytes]) -> AsyncIterator[ServerSentEvent]:
    """The events of a byte stream, each as soon as its blank line arrives."""
    async def closed() -> AsyncIterator[bytes]:
        async for c in chunks:
            yield c
        yield _END

    async for ev in EventSource(httpx.Response(200, headers=_SSE, content=closed())).aiter_sse():
        yield ev


def events(raw: bytes) -> list[ServerSentEvent]:
    """The events of a complete stream."""
    return list(EventSource(httpx.Response(200, headers=_SSE, content=raw + _END)).iter_sse())


def response_events(response: httpx.Response) -> Iterator[ServerSentEvent]:
    """The events of an httpx response being streamed (its content-type must be
    text/event-stream)."""
    return EventSource(response).iter_sse()


def encode(ev: ServerSentEvent) -> bytes:
    """`ev` written back as wire text (its fields, then a blank line)."""
    lines = []
    if ev.event and ev.event != "message":
        lines.append(f"event: {ev.event}")
    if ev.id:
        lines.append(f"id: {ev.id}")
    if ev.retry is not None:
        lines.append(f"retry: {ev.retry}")
    lines += [f"data: {d}" for d in ev.data.split("\n")]
    return ("\n".join(lines) + "\n\n").encode()
