"""`GET /api/2.0/ladle/usage?group_by=endpoint|requester|day[&endpoint=NAME]`: the usage
table summarised (requests, errors, tokens, characters, bytes). Admins see every endpoint;
others see the endpoints they can manage. 404 while no usage was ever recorded."""

from __future__ import annotations

import asyncio
from pathlib import Path

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ladle.api.bodies import principal, validate
from ladle.api.services import Services
from ladle.schemas.errors import ApiError
from ladle.schemas.usage import UsageQuery
from ladle.telemetry.spooled import SpooledWriter
from ladle.telemetry.usage import summarize_usage


def routes(svc: Services, writer: SpooledWriter, tables_root: Path) -> list[Route]:
    async def usage(request: Request) -> Response:
        p = principal(request)
        q = validate(UsageQuery, dict(request.query_params))
        ids = None
        if not p.is_admin:
            ids = await svc.endpoints.ids_at(p, "CAN_MANAGE")
        await writer.flush()
        try:
            rows = await asyncio.to_thread(summarize_usage, tables_root, q.group_by, q.endpoint or None, ids)
        except ImportError:   # the gateway extra (deltalake, duckdb) is not installed
            rows = None
        if rows is None:
            raise ApiError("RESOURCE_DOES_NOT_EXIST",
                           "No usage has been recorded: enable usage_tracking_config on an endpoint's "
                           "AI Gateway.")
        return JSONResponse({"group_by": q.group_by, "rows": rows})

    return [Route("/api/2.0/ladle/usage", usage, methods=["GET"])]
