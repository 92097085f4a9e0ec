"""Authenticate every request (pure ASGI, so streaming and contextvars stay intact).

`authenticate` is awaited: a token the server knows answers without suspending; an unknown
one may be looked up in the database off the event loop, and may raise an ApiError (503 while
the database cannot answer), sent in the API's error shape."""

from __future__ import annotations

from typing import Awaitable, Callable

import orjson
from starlette.types import ASGIApp, Receive, Scope, Send

from ladle.gateway.scope import check_scope
from ladle.schemas.errors import ApiError
from ladle.schemas.principal import Principal

# /apps/: the app proxy authenticates itself (a bearer token, or the app's sign-in cookie)
PUBLIC_PREFIXES = ("/.well-known/databricks-config", "/oidc/", "/static/", "/favicon.ico", "/apps/")
PUBLIC_EXACT = {"/", "/health"}


async def send_error(send: Send, err: ApiError) -> None:
    body = orjson.dumps(err.body())
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    headers += [(k.lower().encode(), v.encode()) for k, v in err.headers.items()]
    await send({"type": "http.response.start", "status": err.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class AuthMiddleware:
    def __init__(self, app: ASGIApp, authenticate: Callable[[str], Awaitable[Principal | None]]) -> None:
        self.app = app
        self.authenticate = authenticate

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        if path in PUBLIC_EXACT or path.startswith(PUBLIC_PREFIXES) or path.startswith("/ui"):
            await self.app(scope, receive, send)
            return
        token = None
        for k, v in scope["headers"]:
            if k == b"authorization":
                value = v.decode("latin-1")
                if value[:7].lower() == "bearer ":
                    token = value[7:].strip()
                break
        if not token:
            await send_error(send, ApiError(
                "UNAUTHENTICATED", "Missing credentials: send 'Authorization: Bearer <token>'.", 401))
            return
        try:
            principal = await self.authenticate(token)
        except ApiError as e:
            await send_error(send, e)
            return
        if principal is None:
            await send_error(send, ApiError("UNAUTHENTICATED", "Invalid access token.", 401))
            return
        try:
            # a data-plane token: its invocations only; a replica's fetch token: its model version
            check_scope(principal, scope["method"], path, scope.get("query_string", b""))
        except ApiError as e:
            await send_error(send, e)
            return
        scope.setdefault("state", {})["principal"] = principal
        await self.app(scope, receive, send)
