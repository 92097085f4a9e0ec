"""A gateway worker's way to the server: every request a worker does not answer itself (the
control plane, the UI, OAuth, the registry, apps) is relayed as it is to the server process
over the server's private Unix socket, streamed both ways, WebSockets included. The server
authenticates and authorizes it as it would any request (the headers travel unchanged)."""

from __future__ import annotations

import asyncio
from typing import AsyncIterator

import httpx
from starlette.types import ASGIApp, Receive, Scope, Send
from starlette.websockets import WebSocket
from websockets.asyncio.client import unix_connect
from websockets.exceptions import InvalidHandshake, InvalidStatus

from ladle.api.app_ws import TRY_AGAIN, _pump

# The caller's address, which the server cannot see on its Unix socket: the worker sets it on
# every relayed request (a caller's own copy is dropped first); the server believes it only on
# requests that came over that socket (`relayed_client`) and drops it from any other.
CLIENT = b"x-ladle-relayed-client"
HOP = {b"connection", b"keep-alive", b"transfer-encoding", b"upgrade", b"proxy-connection", b"te",
       b"trailer"}
WS_SKIP = {"host", "connection", "upgrade", "sec-websocket-key", "sec-websocket-version",
           "sec-websocket-extensions", "sec-websocket-protocol"}


def client(socket_path: str) -> httpx.AsyncClient:
    """The relay's connection pool to the server; the worker closes it."""
    return httpx.AsyncClient(transport=httpx.AsyncHTTPTransport(uds=socket_path),
                             timeout=httpx.Timeout(None, connect=10.0), follow_redirects=False)


class ServerRelay:
    def __init__(self, http: httpx.AsyncClient, socket_path: str) -> None:
        self.http = http
        self.socket_path = socket_path

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            await self._websocket(scope, receive, send)
            return
        path = scope.get("raw_path") or scope["path"].encode()
        url = path.decode("latin-1") + ("?" + scope["query_string"].decode("latin-1")
                                        if scope.get("query_string") else "")
        headers = [(k, v) for k, v in scope["headers"] if k not in HOP and k != CLIENT]
        headers.append((CLIENT, _address(scope)))
        req = self.http.build_request(scope["method"], "http://ladle" + url, headers=headers,
                                      content=_body(receive))
        try:
            resp = await self.http.send(req, stream=True)
        except httpx.HTTPError:
            body = b'{"error_code":"TEMPORARILY_UNAVAILABLE","message":"The server is not answering; retry."}'
            await send({"type": "http.response.start", "status": 503,
                        "headers": [(b"content-type", b"application/json"), (b"retry-after", b"1")]})
            await send({"type": "http.response.body", "body": body})
            return
        try:
            await send({"type": "http.response.start", "status": resp.status_code,
                        "headers": [(k, v) for k, v in resp.headers.raw if k.lower() not in HOP]})
            async for chunk in resp.aiter_raw():
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b""})
        finally:
            await resp.aclose()

    async def _websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        ws = WebSocket(scope, receive, send)
        headers = [(k, v) for k, v in ws.headers.items() if k.lower() not in WS_SKIP and k.lower() != CLIENT.decode()]
        headers.append((CLIENT.decode(), _address(scope).decode()))
        path = scope["path"] + (f"?{ws.url.query}" if ws.url.query else "")
        try:
            upstream = await unix_connect(self.socket_path, f"ws://{ws.headers.get('host', 'ladle')}{path}",
                                          additional_headers=headers, max_size=None, open_timeout=10,
                                          subprotocols=scope.get("subprotocols") or None)
        except InvalidStatus as e:   # the server refused the handshake: refuse it the same way
            await ws.close(TRY_AGAIN if e.response.status_code >= 500 else 1008)
            return
        except (OSError, InvalidHandshake, asyncio.TimeoutError):
            await ws.close(TRY_AGAIN)
            return
        async with upstream:
            await ws.accept(subprotocol=upstream.subprotocol)
            await _pump(ws, upstream)


def _address(scope: Scope) -> bytes:
    host, port = scope.get("client") or ("", 0)
    return f"{host} {port}".encode()


class relayed_client:   # noqa: N801 - used as a function that wraps an app
    """The server's side: a request on its Unix socket (no client address) gets the one its
    worker relayed; on any other the header is dropped, so no caller can name its own.
    Attribute look-ups reach the wrapped app (its `state`)."""

    def __init__(self, app: ASGIApp) -> None:
        self._inner = app

    def __getattr__(self, name: str):
        return getattr(self._inner, name)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket") and any(k == CLIENT for k, _ in scope["headers"]):
            said = b"".join(v for k, v in scope["headers"] if k == CLIENT)
            scope = {**scope, "headers": [(k, v) for k, v in scope["headers"] if k != CLIENT]}
            if scope.get("client") is None:
                host, _, port = said.decode("latin-1").partition(" ")
                scope["client"] = (host, int(port)) if host and port.isdigit() else None
        await self._inner(scope, receive, send)


async def _body(receive: Receive) -> AsyncIterator[bytes]:
    while True:
        msg = await receive()
        if msg["type"] == "http.disconnect":
            return
        chunk = msg.get("body", b"")
        if chunk:
            yield chunk
        if not msg.get("more_body"):
            return
