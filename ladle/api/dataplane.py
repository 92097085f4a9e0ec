"""Data-plane routes: `POST /serving-endpoints/{name}/invocations`,
`POST /serving-endpoints/{name}/served-models/{served}/invocations` and `GET /health`;
and `HotPath`, which takes the first of them straight to the gateway."""

from __future__ import annotations

import re
from typing import Any, Awaitable, Callable, Mapping

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from ladle.api.services import Services


Invoke = Callable[..., Awaitable[Response]]


def routes(svc: Services, invoke: Invoke | None = None) -> list[Route]:
    """`invoke`: what serves a query (the gateway's, or one in front of it that reshapes
    Responses API bodies); same arguments as `Gateway.invoke`."""
    call = invoke or svc.gateway.invoke

    async def invocations(request: Request) -> Response:
        return await call(request, request.path_params["name"])

    async def served_invocations(request: Request) -> Response:
        return await call(request, request.path_params["name"], request.path_params["served"])

    async def health(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    return [
        Route("/serving-endpoints/{name}/invocations", invocations, methods=["POST"]),
        Route("/serving-endpoints/{name}/served-models/{served}/invocations", served_invocations,
              methods=["POST"]),
        Route("/health", health, methods=["GET"]),
    ]


INVOCATIONS = re.compile(r"/serving-endpoints/([^/]+)/invocations")
Handler = Callable[[Request, Any], Awaitable[Response]]


class HotPath:
    """`POST /serving-endpoints/{name}/invocations` to `invoke` directly; every other request
    to `app`. The route is the one `routes` declares, answered as Starlette would answer it
    (an exception raised before the answer goes to the handler of its nearest class in
    `handlers`, the app's exception handlers), without the router walking its routes and the
    two exception middlewares around each request: about a tenth of a small invocation's
    CPU time in a gateway process."""

    def __init__(self, app: ASGIApp, invoke: Invoke, handlers: Mapping[type, Handler]) -> None:
        self.app, self.invoke, self.handlers = app, invoke, handlers

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        m = INVOCATIONS.fullmatch(scope["path"]) if scope["type"] == "http" and scope["method"] == "POST" else None
        if m is None:
            await self.app(scope, receive, send)
            return
        scope["path_params"] = {"name": m.group(1)}
        scope.setdefault("app", self.app)
        request = Request(scope, receive, send)
        try:
            response = await self.invoke(request, m.group(1))
        except Exception as exc:
            handler = next((self.handlers[c] for c in type(exc).__mro__ if c in self.handlers), None)
            if handler is None:
                raise
            response = await handler(request, exc)
        await response(scope, receive, send)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.app, name)      # the app's state, routes ...: as if it were the app
