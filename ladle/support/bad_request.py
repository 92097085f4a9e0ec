"""HTTP protocols for the API server whose 400 to a request uvicorn cannot parse (a request line
or header over the parser's limits, a control character in the target) is in the API's error
shape, `{"error_code": "BAD_REQUEST", "message": ...}`, instead of uvicorn's text/plain one.

Such a request never reaches the app, so no middleware can answer it; uvicorn has no setting
for that answer either, so these subclasses replace its `send_400_response`, the one place
both of its HTTP/1.1 protocols write it. `http_protocol()` picks the one uvicorn's "auto"
would (httptools when installed, else h11).

The httptools one also writes each response's head and body in one send (`_Coalesced`):
uvicorn writes them in two, and on the gateway's hot path that second system call is a
tenth of a small request's CPU time."""

from __future__ import annotations

import asyncio

import orjson
from uvicorn.protocols.http.h11_impl import H11Protocol


def error_body(msg: str) -> bytes:
    return orjson.dumps({"error_code": "BAD_REQUEST",
                         "message": f"{msg.rstrip('.')}: the request line or a header is malformed or "
                                    "too long (for long values send them in a POST body)"})


class JsonErrorH11Protocol(H11Protocol):
    def send_400_response(self, msg: str) -> None:
        import h11

        body = error_body(msg)
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                   (b"connection", b"close")]
        for event in (h11.Response(status_code=400, headers=headers, reason=b"Bad Request"),
                      h11.Data(data=body), h11.EndOfMessage()):
            self.transport.write(self.conn.send(event))
        self.transport.close()


class _Coalesced:
    """A transport whose writes within one turn of the event loop leave in one send (uvicorn
    writes a response's head and its body separately). Everything else is the transport's;
    a close sends what is held first. Hand-written: uvicorn has no setting for it."""

    __slots__ = ("_t", "_held", "_loop")

    def __init__(self, transport: asyncio.Transport) -> None:
        self._t = transport
        self._held: list[bytes] = []
        self._loop = asyncio.get_running_loop()

    def write(self, data: bytes) -> None:
        if not self._held:
            self._loop.call_soon(self._flush)
        self._held.append(data)

    def _flush(self) -> None:
        if self._held:
            data = self._held[0] if len(self._held) == 1 else b"".join(self._held)
            self._held = []
            if not self._t.is_closing():
                self._t.write(data)

    def writelines(self, chunks: list[bytes]) -> None:
        for c in chunks:
            self.write(c)

    def write_eof(self) -> None:
        self._flush()
        self._t.write_eof()

    def close(self) -> None:
        self._flush()
        self._t.close()

    def __getattr__(self, name: str) -> object:
        return getattr(self._t, name)


def http_protocol() -> type[asyncio.Protocol]:
    try:
        from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol
    except ImportError:
        return JsonErrorH11Protocol

    class JsonErrorHttpToolsProtocol(HttpToolsProtocol):
        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(_Coalesced(transport))  # type: ignore[arg-type]

        def handle_websocket_upgrade(self) -> None:
            # a WebSocket gets the transport itself (its protocol writes frames as they come)
            if isinstance(self.transport, _Coalesced):
                self.transport._flush()
                self.transport = self.transport._t
            super().handle_websocket_upgrade()

        def send_400_response(self, msg: str) -> None:
            body = error_body(msg)
            content = [STATUS_LINE[400]]
            for name, value in self.server_state.default_headers:
                content.extend([name, b": ", value, b"\r\n"])
            content.extend([b"content-type: application/json\r\n",
                            b"content-length: " + str(len(body)).encode("ascii") + b"\r\n",
                            b"connection: close\r\n", b"\r\n", body])
            self.transport.write(b"".join(content))
            self.transport.close()

    return JsonErrorHttpToolsProtocol
