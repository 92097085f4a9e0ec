"""Group routes (ladle's own API; Databricks manages groups with SCIM at the account):
`/api/2.0/ladle/groups`. Reads for every principal, changes for admins only."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ladle.api.bodies import json_body, principal
from ladle.control.groups import GroupService
from ladle.schemas.errors import ApiError, invalid

BASE = "/api/2.0/ladle/groups"


def routes(groups: GroupService) -> list[Route]:
    def admin_only(request: Request) -> None:
        if not principal(request).is_admin:
            raise ApiError("PERMISSION_DENIED", "Only admins can manage groups.")

    async def list_groups(request: Request) -> Response:
        return JSONResponse({"groups": groups.list()})

    async def create(request: Request) -> Response:
        admin_only(request)
        body = await json_body(request)
        return JSONResponse(groups.create(body.get("display_name")))

    async def delete(request: Request) -> Response:
        admin_only(request)
        groups.delete(request.path_params["name"])
        return JSONResponse({})

    async def add_member(request: Request) -> Response:
        admin_only(request)
        body = await json_body(request)
        given = [k for k in ("user_name", "service_principal_name") if body.get(k)]
        if len(given) != 1:
            raise invalid("exactly one of user_name or service_principal_name is required")
        kind = "user" if given[0] == "user_name" else "service_principal"
        return JSONResponse(groups.add_member(request.path_params["name"], body[given[0]], kind))

    async def remove_member(request: Request) -> Response:
        admin_only(request)
        return JSONResponse(groups.remove_member(request.path_params["name"],
                                                 request.path_params["member"]))

    return [
        Route(BASE, list_groups, methods=["GET"]),
        Route(BASE, create, methods=["POST"]),
        Route(BASE + "/{name}", delete, methods=["DELETE"]),
        Route(BASE + "/{name}/members", add_member, methods=["POST"]),
        Route(BASE + "/{name}/members/{member}", remove_member, methods=["DELETE"]),
    ]
