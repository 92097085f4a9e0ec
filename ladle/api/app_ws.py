"""WebSockets to apps: `ws(s)://<server>/apps/<name>/<path>` is relayed to the app's process
(Streamlit, Gradio and Dash talk to their pages over one). The caller is named and checked as
for HTTP (api/app_gate.py: bearer token or the app's session cookie, CAN_USE); a handshake on
the session cookie must come from this server's own origin (no cross-site WebSocket
hijacking). Messages are relayed as they come, text as text and bytes as bytes, until either
side closes; the close code travels across."""

from __future__ import annotations

import asyncio
import contextlib
from urllib.parse import urlsplit

from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

from ladle.api.app_gate import AppGate, is_forwarded
from ladle.schemas.errors import ApiError

POLICY = 1008          # close codes: refused (who or where from), app unavailable
TRY_AGAIN = 1013
SKIP = {"host", "connection", "upgrade", "authorization", "cookie", "origin", "sec-websocket-key",
        "sec-websocket-version", "sec-websocket-extensions", "sec-websocket-protocol"}


def routes(gate: AppGate) -> list[WebSocketRoute]:
    async def relay(ws: WebSocket) -> None:
        name = ws.path_params["name"]
        try:
            p = await gate.caller(ws, name)
            if p is None:
                raise ApiError("UNAUTHENTICATED", "no credentials", 401)
            if p.auth_type == "app-session" and not _same_origin(ws):
                raise ApiError("PERMISSION_DENIED", "cross-origin", 403)
            await gate.require_use(p, name)
        except ApiError:
            await ws.close(POLICY)
            return
        port = gate.port(name)
        if port is None:
            await ws.close(TRY_AGAIN)
            return
        headers = [(k, v) for k, v in ws.headers.items() if k.lower() not in SKIP and not is_forwarded(k)]
        cookies = gate.app_cookies(ws)
        if cookies:
            headers.append(("cookie", cookies))
        headers += gate.forwarded(ws, name, p, "https" if ws.url.scheme == "wss" else "http")
        path = "/" + ws.path_params.get("path", "") + (f"?{ws.url.query}" if ws.url.query else "")
        subprotocols = ws.scope.get("subprotocols") or None
        try:
            upstream = await connect(f"ws://127.0.0.1:{port}{path}", additional_headers=headers,
                                     subprotocols=subprotocols, proxy=None, max_size=None, open_timeout=10)
        except (OSError, InvalidHandshake, InvalidStatus, asyncio.TimeoutError):
            await ws.close(TRY_AGAIN)
            return
        async with upstream:
            await ws.accept(subprotocol=upstream.subprotocol)
            await _pump(ws, upstream)

    return [WebSocketRoute("/apps/{name}/{path:path}", relay)]


def _same_origin(ws: WebSocket) -> bool:
    origin = ws.headers.get("origin")
    return origin is None or urlsplit(origin).netloc == ws.headers.get("host")


async def _pump(ws: WebSocket, upstream) -> None:
    async def down() -> None:
        with contextlib.suppress(ConnectionClosed):
            async for msg in upstream:
                if isinstance(msg, str):
                    await ws.send_text(msg)
                else:
                    await ws.send_bytes(msg)
        code = upstream.close_code or 1000
        with contextlib.suppress(RuntimeError):
            await ws.close(code if 1000 <= code < 5000 and code not in (1005, 1006, 1015) else 1000)

    async def up() -> None:
        with contextlib.suppress(WebSocketDisconnect, ConnectionClosed):
            while True:
                msg = await ws.receive()
                if msg["type"] == "websocket.disconnect":
                    break
                if msg.get("text") is not None:
                    await upstream.send(msg["text"])
                elif msg.get("bytes") is not None:
                    await upstream.send(msg["bytes"])
        await upstream.close()

    tasks = [asyncio.ensure_future(down()), asyncio.ensure_future(up())]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
