"""Permission routes keyed by endpoint id: `/api/2.0/permissions/serving-endpoints/{id}` (get, put,
patch) and its `/permissionLevels`. Bodies: ladle.schemas.permissions."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ladle.api.bodies import json_body, principal, validate
from ladle.api.services import Services
from ladle.control.permissions import levels_response
from ladle.schemas.permissions import PermissionsRequest


def routes(svc: Services) -> list[Route]:
    async def _endpoint(request: Request, level: str) -> str:
        return await svc.perms.authorize_by_id(principal(request), request.path_params["id"], level)

    async def levels(request: Request) -> Response:
        await _endpoint(request, "CAN_VIEW")
        return JSONResponse(levels_response())

    async def get(request: Request) -> Response:
        return JSONResponse(svc.perms.render(await _endpoint(request, "CAN_VIEW")))

    async def put(request: Request) -> Response:
        eid = await _endpoint(request, "CAN_MANAGE")
        req = validate(PermissionsRequest, await json_body(request))
        await svc.perms.replace(eid, [e.entry() for e in req.access_control_list])
        return JSONResponse(svc.perms.render(eid))

    async def patch(request: Request) -> Response:
        eid = await _endpoint(request, "CAN_MANAGE")
        req = validate(PermissionsRequest, await json_body(request))
        await svc.perms.add(eid, [e.entry() for e in req.access_control_list])
        return JSONResponse(svc.perms.render(eid))

    base = "/api/2.0/permissions/serving-endpoints/{id}"
    return [
        Route(base + "/permissionLevels", levels, methods=["GET"]),
        Route(base, get, methods=["GET"]),
        Route(base, put, methods=["PUT"]),
        Route(base, patch, methods=["PATCH"]),
    ]
