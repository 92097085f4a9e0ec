"""ladle's foundation model catalog over HTTP (a ladle extension; the CLI's `ladle models`):

GET  /api/2.0/ladle/foundation-models            the catalog, with where each model's weights are
POST /api/2.0/ladle/foundation-models/add-local  {path, name, task}: add a local Hugging Face
     model directory (admins only) and create its pay-per-token endpoint
"""

from __future__ import annotations

import asyncio
from typing import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ladle.api.bodies import json_body, principal, validate
from ladle.entities.catalog import Catalog
from ladle.schemas.errors import denied
from ladle.schemas.catalog import AddLocalModelRequest

BASE = "/api/2.0/ladle/foundation-models"


def routes(catalog: Catalog, on_added: Callable[[str], Awaitable[list[str]]]) -> list[Route]:
    async def list_models(request: Request) -> Response:
        # The catalog reads its file and looks for weights on disk: off the event loop.
        return JSONResponse({"models": await asyncio.to_thread(lambda: [m.view() for m in catalog.all()])})

    async def add_local(request: Request) -> Response:
        if not principal(request).is_admin:
            raise denied("Only admins can add models to the foundation model catalog.")
        body = validate(AddLocalModelRequest, await json_body(request))
        m = await asyncio.to_thread(catalog.add_local, body.path, body.name, body.task)
        created = await on_added(m.entity_name)
        return JSONResponse({"model": m.view(), "endpoints_created": created})

    return [
        Route(BASE, list_models, methods=["GET"]),
        Route(BASE + "/add-local", add_local, methods=["POST"]),
    ]
