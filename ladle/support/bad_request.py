"""HTTP protocols for the API server whose 400 to a request uvicorn cannot parse (a request line
or header over the parser's limits, a control character in the target) is in the API's error
shape, `{"error_code": "BAD_REQUEST", "message": ...}`, instead of uvicorn's text/plain one.

Such a request never reaches the app, so no middleware can answer it; uvicorn has no setting
for that answer either, so these subclasses replace its `send_400_response`, the one place
both of its HTTP/1.1 protocols write it. `http_protocol()` picks the one uvicorn's "auto"
would (httptools when installed, else h11)."""

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


def http_protocol() -> type[asyncio.Protocol]:
    try:
        from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol
    except ImportError:
        return JsonErrorH11Protocol

    class JsonErrorHttpToolsProtocol(HttpToolsProtocol):
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
