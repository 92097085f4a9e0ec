"""`HotPath`: invocations go straight to the gateway's invoke, answered as the app's route and
exception handlers would answer them; everything else reaches the app unchanged. And the
request ids the gateway makes for each invocation."""

from __future__ import annotations

import httpx
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from ladle.api import dataplane
from ladle.api.errors import api_error, http_error, internal_error
from ladle.schemas.errors import ApiError

HANDLERS = {ApiError: api_error, HTTPException: http_error, Exception: internal_error}


def _client(invoke) -> httpx.AsyncClient:
    app = Starlette(routes=dataplane.routes(None, invoke), exception_handlers=HANDLERS)  # type: ignore[arg-type]
    hot = dataplane.HotPath(app, invoke, HANDLERS)  # type: ignore[arg-type]
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=hot), base_url="http://t")


async def test_an_invocation_reaches_invoke_with_its_name_and_body():
    seen = []

    async def invoke(request: Request, name: str, served: str | None = None) -> Response:
        seen.append((name, request.path_params, await request.body(), served, "router" in request.scope))
        return JSONResponse({"predictions": [1]}, headers={"served-model-name": "a"})

    async with _client(invoke) as c:
        r = await c.post("/serving-endpoints/my-ep/invocations", content=b'{"inputs": [1]}')
        assert r.status_code == 200 and r.json() == {"predictions": [1]}
        assert r.headers["served-model-name"] == "a"
        # taken past the router (Starlette's router marks the scope of what it routes)
        assert seen == [("my-ep", {"name": "my-ep"}, b'{"inputs": [1]}', None, False)]
        # the served-model route and the rest go through the app's router as before
        r = await c.post("/serving-endpoints/my-ep/served-models/a/invocations", content=b"{}")
        assert r.status_code == 200 and seen[-1][3:] == ("a", True)
        assert (await c.get("/health")).json() == {"status": "ok"}
        r = await c.get("/serving-endpoints/my-ep/invocations")
        assert r.status_code == 405 and r.json()["error_code"]


async def test_errors_are_answered_by_the_apps_handlers():
    async def invoke(request: Request, name: str, served: str | None = None) -> Response:
        if name == "gone":
            raise ApiError("RESOURCE_DOES_NOT_EXIST", "no such endpoint", 404)
        raise RuntimeError("boom")

    async with _client(invoke) as c:
        r = await c.post("/serving-endpoints/gone/invocations", content=b"{}")
        assert r.status_code == 404
        assert r.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST" and r.json()["message"] == "no such endpoint"
        r = await c.post("/serving-endpoints/broken/invocations", content=b"{}")
        assert r.status_code == 500 and r.json()["error_code"] == "INTERNAL_ERROR"


def test_request_ids_are_random_version_4_uuids_as_text():
    import uuid

    from ladle.gateway.pipeline import request_id

    ids = [request_id() for _ in range(2000)]
    assert len(set(ids)) == len(ids)
    for rid in ids:
        u = uuid.UUID(rid)
        assert str(u) == rid and u.version == 4 and u.variant == uuid.RFC_4122
