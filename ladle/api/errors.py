"""Render ApiError (and anything unexpected) in the Databricks error shape."""

from __future__ import annotations

import logging
import uuid

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Match

from ladle.schemas.errors import ApiError

log = logging.getLogger("ladle.api")


async def api_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    return JSONResponse(exc.body(), status_code=exc.status, headers=exc.headers)


async def http_error(request: Request, exc: Exception) -> JSONResponse:
    status = getattr(exc, "status_code", 500)
    code = {404: "ENDPOINT_NOT_FOUND", 405: "BAD_REQUEST"}.get(status, "BAD_REQUEST")
    headers = dict(getattr(exc, "headers", None) or {})
    if status == 405:
        headers["Allow"] = ", ".join(_allowed_methods(request))
    return JSONResponse(ApiError(code, getattr(exc, "detail", "") or "Not found", status).body(),
                        status_code=status, headers=headers)


def _allowed_methods(request: Request) -> list[str]:
    """Every method some route serves on this path (Starlette's own 405 names only the first
    route's, and ladle declares one route per method)."""
    methods: set[str] = set()
    for route in getattr(request.app, "routes", ()):
        match, _ = route.matches(request.scope)
        if match != Match.NONE:
            methods |= set(getattr(route, "methods", None) or ())
    return sorted(methods)


async def internal_error(request: Request, exc: Exception) -> JSONResponse:
    rid = str(uuid.uuid4())
    log.exception("internal error on %s %s (request %s)", request.method, request.url.path, rid)
    err = ApiError("INTERNAL_ERROR", f"Internal error (request id {rid}); see the server log.", 500)
    return JSONResponse(err.body(rid), status_code=500)


async def database_away(request: Request, exc: Exception) -> JSONResponse:
    """The database (PostgreSQL on another host) cannot be reached: the transaction did not
    commit, so nothing changed; the client may retry."""
    log.warning("database unavailable on %s %s: %s", request.method, request.url.path, exc)
    err = ApiError("TEMPORARILY_UNAVAILABLE", "ladle's database cannot be reached right now; nothing "
                   "was changed. Retry the request shortly.", 503, headers={"Retry-After": "1"})
    return JSONResponse(err.body(), status_code=503, headers=err.headers)


async def client_gone(request: Request, exc: Exception) -> Response:
    """The client hung up before its request body arrived: no one to answer, nothing to log."""
    return Response(status_code=499)
