"""`GET /api/2.0/ladle/usage?group_by=endpoint|requester|day[&endpoint=NAME]`: the usage
table summarised (requests, errors, tokens, characters, bytes). Admins see every endpoint;
others see the endpoints they can manage. 404 while no usage was ever recorded."""

from __future__ import annotations

import asyncio
from pathlib import Path

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ladle.api.bodies import principal
from ladle.api.services import Services
from ladle.schemas.errors import ApiError, invalid
from ladle.telemetry.tables import TableWriter
from ladle.telemetry.usage import GROUP_BY, read_usage, summarize


def routes(svc: Services, writer: TableWriter, tables_root: Path) -> list[Route]:
    async def usage(request: Request) -> Response:
        p = principal(request)
        group_by = request.query_params.get("group_by", "endpoint")
        if group_by not in GROUP_BY:
            raise invalid(f"group_by: must be one of {', '.join(GROUP_BY)}, got '{group_by}'")
        endpoint = request.query_params.get("endpoint") or None
        ids = None
        if not p.is_admin:
            ids = {r.id for r in svc.endpoints.store.list_endpoints()
                   if svc.perms.level(p, r.id) == "CAN_MANAGE"}
        await writer.flush()
        try:
            table = await asyncio.to_thread(read_usage, tables_root)
        except ImportError:
            table = None
        if table is None:
            raise ApiError("RESOURCE_DOES_NOT_EXIST",
                           "No usage has been recorded: enable usage_tracking_config on an endpoint's "
                           "AI Gateway.")
        rows = await asyncio.to_thread(summarize, table, group_by, endpoint, ids)
        return JSONResponse({"group_by": group_by, "rows": rows})

    return [Route("/api/2.0/ladle/usage", usage, methods=["GET"])]
