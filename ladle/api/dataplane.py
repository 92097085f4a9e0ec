"""Data-plane routes: `POST /serving-endpoints/{name}/invocations`,
`POST /serving-endpoints/{name}/served-models/{served}/invocations` and `GET /health`."""

from __future__ import annotations

from typing import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

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
