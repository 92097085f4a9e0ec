"""ladle's foundation model catalog over HTTP (a ladle extension; the CLI's `ladle models`):

GET  /api/2.0/ladle/foundation-models            the catalog, with where each model's weights are
POST /api/2.0/ladle/foundation-models/add-local  {path, name, task}: add a local Hugging Face
     model directory (admins only) and create its pay-per-token endpoint
"""

from __future__ import annotations

from typing import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ladle.api.bodies import json_body, principal
from ladle.entities.catalog import Catalog
from ladle.schemas.errors import denied, invalid

BASE = "/api/2.0/ladle/foundation-models"


def routes(catalog: Catalog, on_added: Callable[[str], Awaitable[list[str]]]) -> list[Route]:
    async def list_models(request: Request) -> Response:
        return JSONResponse({"models": [m.view() for m in catalog.all()]})

    async def add_local(request: Request) -> Response:
        if not principal(request).is_admin:
            raise denied("Only admins can add models to the foundation model catalog.")
        body = await json_body(request)
        for f in ("path", "name", "task"):
            if not isinstance(body.get(f), str) or not body[f]:
                raise invalid(f"{f}: is required")
        m = catalog.add_local(body["path"], body["name"], body["task"])
        created = await on_added(m.entity_name)
        return JSONResponse({"model": m.view(), "endpoints_created": created})

    return [
        Route(BASE, list_models, methods=["GET"]),
        Route(BASE + "/add-local", add_local, methods=["POST"]),
    ]
