"""The proxy `ladle apps run-local` puts in front of the app (port --port, 8001 by default), as
the Databricks CLI does: every request is passed to the app on 127.0.0.1:--app-port with the
headers a deployed app receives from the platform (X-Forwarded-User, -Email,
-Preferred-Username from your /Me, X-Forwarded-Host, X-Real-Ip, a fresh X-Request-Id), bodies
streamed both ways. It runs on uvicorn in a background thread of the CLI process.
"""

from __future__ import annotations

import contextlib
import threading
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]
HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "host",
              "proxy-authorization", "proxy-connection"}


def identity_headers(me: dict[str, Any]) -> dict[str, str]:
    """The X-Forwarded-* identity of the signed-in user, from a SCIM /Me answer."""
    user = str(me.get("userName") or "")
    emails = [e.get("value") for e in me.get("emails") or [] if e.get("value")]
    return {
        "X-Forwarded-Host": "localhost",
        "X-Forwarded-Preferred-Username": str(me.get("displayName") or user),
        "X-Forwarded-User": user,
        "X-Forwarded-Email": str(emails[0] if emails else user),
        "X-Real-Ip": "127.0.0.1",
    }


def build(app_port: int, inject: dict[str, str]) -> Starlette:
    upstream = httpx.AsyncClient(base_url=f"http://127.0.0.1:{app_port}", timeout=None)

    async def forward(request: Request) -> Response:
        headers = [(k, v) for k, v in request.headers.items() if k.lower() not in HOP_BY_HOP]
        headers = [(k, v) for k, v in headers if k.lower() not in {h.lower() for h in inject}]
        headers += [*inject.items(), ("X-Request-Id", str(uuid.uuid4()))]
        req = upstream.build_request(request.method, request.url.path, params=request.query_params,
                                     headers=headers, content=request.stream())
        try:
            resp = await upstream.send(req, stream=True)
        except httpx.TransportError:
            return Response("the app is not answering (yet) on its port\n", status_code=502)
        out = {k: v for k, v in resp.headers.items() if k.lower() not in HOP_BY_HOP | {"content-length"}}
        return StreamingResponse(resp.aiter_raw(), status_code=resp.status_code, headers=out,
                                 background=BackgroundTask(resp.aclose))

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        yield
        await upstream.aclose()

    return Starlette(routes=[Route("/{path:path}", forward, methods=METHODS)], lifespan=lifespan)


class LocalProxy:
    """Serves `build(...)` on 127.0.0.1:`port` in a daemon thread until `stop()`."""

    def __init__(self, port: int, app_port: int, inject: dict[str, str]) -> None:
        config = uvicorn.Config(build(app_port, inject), host="127.0.0.1", port=port, log_level="warning",
                                lifespan="on")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name="ladle-app-proxy", daemon=True)

    def start(self, timeout_s: float = 10.0) -> None:
        self.thread.start()
        deadline = threading.Event()
        for _ in range(int(timeout_s / 0.05)):
            if self.server.started or not self.thread.is_alive():
                break
            deadline.wait(0.05)
        if not self.server.started:
            raise OSError(f"the app proxy could not listen on 127.0.0.1:{self.server.config.port}")

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(5)
