"""A tiny OpenAI-compatible upstream for the streamed-chat benchmark (stdlib only).

`python -m bench.fake_openai --port P [--tokens 8] [--interval-ms 5]`
POST .../chat/completions: with `"stream": true` it answers SSE (`data: {chunk}` events,
the first one at once, then one per interval, then `data: [DONE]`), otherwise one
`chat.completion` JSON. GET anything: 200 `{"status":"ok"}` (readiness probe).
HTTP/1.1 keep-alive, chunked transfer encoding for streams.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time


def _chunk(i: int, model: str, content: str | None, finish: str | None = None) -> bytes:
    delta = {"role": "assistant", "content": content} if i == 0 else ({"content": content} if content else {})
    obj = {"id": "chatcmpl-bench", "object": "chat.completion.chunk", "created": int(time.time()),
           "model": model, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
    return b"data: " + json.dumps(obj, separators=(",", ":")).encode() + b"\n\n"


def _http_chunk(data: bytes) -> bytes:
    return f"{len(data):x}\r\n".encode() + data + b"\r\n"


class Upstream:
    def __init__(self, tokens: int, interval_s: float) -> None:
        self.tokens = tokens
        self.interval_s = interval_s

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                method = lines[0].split()[0]
                hdrs = {k.strip().lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines[1:] if ln)}
                body = await reader.readexactly(int(hdrs.get("content-length", "0")))
                if method != "POST":
                    self._json(writer, 200, {"status": "ok"})
                else:
                    await self._chat(writer, body)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
            pass
        finally:
            writer.close()

    def _json(self, writer: asyncio.StreamWriter, status: int, obj: dict) -> None:
        data = json.dumps(obj).encode()
        writer.write(f"HTTP/1.1 {status} OK\r\nContent-Type: application/json\r\n"
                     f"Content-Length: {len(data)}\r\n\r\n".encode() + data)

    async def _chat(self, writer: asyncio.StreamWriter, body: bytes) -> None:
        try:
            req = json.loads(body or b"{}")
        except ValueError:
            req = {}
        model = str(req.get("model") or "fake-chat")
        if not req.get("stream"):
            self._json(writer, 200, {
                "id": "chatcmpl-bench", "object": "chat.completion", "created": int(time.time()),
                "model": model, "choices": [{"index": 0, "finish_reason": "stop",
                                             "message": {"role": "assistant", "content": "tok " * self.tokens}}],
                "usage": {"prompt_tokens": 1, "completion_tokens": self.tokens,
                          "total_tokens": self.tokens + 1}})
            return
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                     b"Cache-Control: no-cache\r\nTransfer-Encoding: chunked\r\n\r\n")
        writer.write(_http_chunk(_chunk(0, model, "tok")))
        await writer.drain()
        for i in range(1, self.tokens):
            await asyncio.sleep(self.interval_s)
            writer.write(_http_chunk(_chunk(i, model, " tok")))
            await writer.drain()
        writer.write(_http_chunk(_chunk(self.tokens, model, None, "stop")))
        writer.write(_http_chunk(b"data: [DONE]\n\n") + b"0\r\n\r\n")


async def amain(port: int, tokens: int, interval_s: float) -> None:
    up = Upstream(tokens, interval_s)
    server = await asyncio.start_server(up.handle, "127.0.0.1", port)
    print(f"fake upstream listening on 127.0.0.1:{port}", flush=True)
    async with server:
        await server.serve_forever()


def main() -> None:
    ap = argparse.ArgumentParser(prog="bench.fake_openai")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--tokens", type=int, default=8)
    ap.add_argument("--interval-ms", type=float, default=5.0)
    a = ap.parse_args()
    try:
        asyncio.run(amain(a.port, a.tokens, a.interval_ms / 1000.0))
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
