"""Permission routes keyed by endpoint id (reference §1 rows 17-20). Bodies:
ladle.schemas.permissions."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ladle.api.bodies import json_body, principal, validate
from ladle.api.services import Services
from ladle.control.permissions import levels_response
from ladle.schemas.errors import ApiError
from ladle.schemas.permissions import PermissionsRequest


def routes(svc: Services) -> list[Route]:
    async def _endpoint(request: Request, level: str) -> str:
        eid = request.path_params["id"]
        rec = await svc.perms.store.call(svc.perms.store.get_endpoint_by_id, eid)
        if rec is None:
            raise ApiError("RESOURCE_DOES_NOT_EXIST", f"Serving endpoint with id '{eid}' does not exist.")
        svc.perms.require(principal(request), rec.id, rec.name, level)
        return rec.id

    async def levels(request: Request) -> Response:
        await _endpoint(request, "CAN_VIEW")
        return JSONResponse(levels_response())

    async def get(request: Request) -> Response:
        return JSONResponse(svc.perms.render(await _endpoint(request, "CAN_VIEW")))

    async def put(request: Request) -> Response:
        eid = await _endpoint(request, "CAN_MANAGE")
        req = validate(PermissionsRequest, await json_body(request))
        await svc.perms.store.call(svc.perms.set, eid, [e.entry() for e in req.access_control_list])
        return JSONResponse(svc.perms.render(eid))

    async def patch(request: Request) -> Response:
        eid = await _endpoint(request, "CAN_MANAGE")
        req = validate(PermissionsRequest, await json_body(request))
        await svc.perms.store.call(svc.perms.update, eid, [e.entry() for e in req.access_control_list])
        return JSONResponse(svc.perms.render(eid))

    base = "/api/2.0/permissions/serving-endpoints/{id}"
    return [
        Route(base + "/permissionLevels", levels, methods=["GET"]),
        Route(base, get, methods=["GET"]),
        Route(base, put, methods=["PUT"]),
        Route(base, patch, methods=["PATCH"]),
    ]
