"""Group routes (ladle's own API; Databricks manages groups with SCIM at the account):
`/api/2.0/ladle/groups`. Reads for every principal, changes for admins only. Bodies:
ladle.schemas.groups."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ladle.api.bodies import json_body, principal, validate
from ladle.control.groups import GroupService
from ladle.schemas.errors import ApiError
from ladle.schemas.groups import AddMemberRequest, CreateGroupRequest

BASE = "/api/2.0/ladle/groups"


def routes(groups: GroupService) -> list[Route]:
    def admin_only(request: Request) -> None:
        if not principal(request).is_admin:
            raise ApiError("PERMISSION_DENIED", "Only admins can manage groups.")

    async def list_groups(request: Request) -> Response:
        return JSONResponse({"groups": groups.list()})

    async def create(request: Request) -> Response:
        admin_only(request)
        body = validate(CreateGroupRequest, await json_body(request))
        return JSONResponse(await groups.store.call(groups.create, body.display_name))

    async def delete(request: Request) -> Response:
        admin_only(request)
        await groups.store.call(groups.delete, request.path_params["name"])
        return JSONResponse({})

    async def add_member(request: Request) -> Response:
        admin_only(request)
        member, kind = validate(AddMemberRequest, await json_body(request)).member()
        return JSONResponse(await groups.store.call(groups.add_member, request.path_params["name"], member, kind))

    async def remove_member(request: Request) -> Response:
        admin_only(request)
        return JSONResponse(await groups.store.call(groups.remove_member, request.path_params["name"],
                                                    request.path_params["member"]))

    return [
        Route(BASE, list_groups, methods=["GET"]),
        Route(BASE, create, methods=["POST"]),
        Route(BASE + "/{name}", delete, methods=["DELETE"]),
        Route(BASE + "/{name}/members", add_member, methods=["POST"]),
        Route(BASE + "/{name}/members/{member}", remove_member, methods=["DELETE"]),
    ]
