"""SCIM routes, the part databricks-sdk's iam API calls (`w.current_user.me()`, `w.users`,
`w.service_principals`, `w.groups`): `/api/2.0/preview/scim/v2/Me|Users|ServicePrincipals|
Groups`. Everyone may read (Me, and list/get of users, service principals and groups, as in a
Databricks workspace); admins create, delete and change group membership. Bodies:
ladle.schemas.scim; the principals: ladle.control.principals.

Errors carry SCIM's fields (`schemas: [...Error]`, `status`, `scimType`) and Databricks'
`error_code`/`message`, but no `detail`: databricks-sdk replaces the error code with
`SCIM_<status>` when `detail` is present, and would then raise BadRequest/ResourceConflict
instead of InvalidParameterValue/ResourceAlreadyExists (RFC 7644 makes `detail` optional)."""

from __future__ import annotations

import functools
import re
from typing import Any, Awaitable, Callable

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ladle.api.bodies import json_body, principal, validate
from ladle.control import scim_filter
from ladle.control.principals import PrincipalService
from ladle.schemas import scim as sc
from ladle.schemas.errors import ApiError, invalid
from ladle.schemas.wire import Body

BASE = "/api/2.0/preview/scim/v2"
SCIM_TYPE = {400: "invalidValue", 409: "uniqueness"}
FILTERABLE = {"user": frozenset({"id", "username", "displayname", "active"}),
              "service_principal": frozenset({"id", "applicationid", "displayname", "active"}),
              "group": frozenset({"id", "displayname"})}
_REMOVE_ONE = re.compile(r'^members\[\s*value\s+eq\s+"([^"]+)"\s*\]$', re.IGNORECASE)
Handler = Callable[[Request], Awaitable[Response]]


class _Members(Body):
    members: list[sc.Ref]


def scim_error(e: ApiError) -> JSONResponse:
    body: dict[str, Any] = {"schemas": [sc.ERROR], "status": str(e.status), **e.body()}
    if e.status in SCIM_TYPE:
        body["scimType"] = SCIM_TYPE[e.status]
    return JSONResponse(body, e.status, headers=e.headers)


def _scim(fn: Handler) -> Handler:
    @functools.wraps(fn)
    async def wrapped(request: Request) -> Response:
        try:
            return await fn(request)
        except ApiError as e:
            return scim_error(e)
    return wrapped


def _shape(item: dict[str, Any], attributes: str | None, excluded: str | None) -> dict[str, Any]:
    """`attributes` keeps only the named ones (and id, schemas); `excludedAttributes` drops."""
    if attributes:
        keep = {a.strip().lower() for a in attributes.split(",")} | {"id", "schemas"}
        item = {k: v for k, v in item.items() if k.lower() in keep}
    if excluded:
        drop = {a.strip().lower() for a in excluded.split(",")} - {"id", "schemas"}
        item = {k: v for k, v in item.items() if k.lower() not in drop}
    return item


def routes(svc: PrincipalService) -> list[Route]:
    store = svc.store

    def admin_only(request: Request) -> None:
        if not principal(request).is_admin:
            raise ApiError("PERMISSION_DENIED", "Only admins can manage users, service principals "
                           "and groups.")

    def group_refs(p: dict[str, Any]) -> list[dict[str, Any]]:
        return [{"display": g, "value": svc.group_id(g), "$ref": f"Groups/{svc.group_id(g)}",
                 "type": "direct"} for g in svc.group_names(p)]

    def render(p: dict[str, Any]) -> dict[str, Any]:
        if p["kind"] == "user":
            emails = [{"value": p["name"], "primary": True, "type": "work"}] if "@" in p["name"] else []
            return {"id": p["id"], "userName": p["name"], "displayName": p["display_name"],
                    "active": p["active"], "emails": emails, "groups": group_refs(p),
                    "schemas": [sc.USER]}
        return {"id": p["id"], "applicationId": p["name"], "displayName": p["display_name"],
                "active": p["active"], "groups": group_refs(p), "schemas": [sc.SERVICE_PRINCIPAL]}

    def render_group(name: str) -> dict[str, Any]:
        members = [{"display": m["name"], "value": m["id"],
                    "$ref": f"{'Users' if m['kind'] == 'user' else 'ServicePrincipals'}/{m['id']}"}
                   for m in svc.group_members(name)]
        return {"id": svc.group_id(name), "displayName": name, "members": members,
                "schemas": [sc.GROUP]}

    def listing(items: list[dict[str, Any]], q: sc.ListQuery, kind: str) -> dict[str, Any]:
        if q.filter:
            keep = scim_filter.parse(q.filter, FILTERABLE[kind])
            items = [i for i in items if keep({k.lower(): v for k, v in i.items()})]
        if q.sortBy:
            key = q.sortBy.lower()
            items.sort(key=lambda i: str(next((v for k, v in i.items() if k.lower() == key), "")).lower(),
                       reverse=q.sortOrder == "descending")
        start = q.startIndex or 1
        page = items[start - 1:] if q.count is None else items[start - 1:start - 1 + q.count]
        return {"totalResults": len(items), "startIndex": start, "itemsPerPage": len(page),
                "schemas": [sc.LIST],
                "Resources": [_shape(i, q.attributes, q.excludedAttributes) for i in page]}

    # -- Me -----------------------------------------------------------------------------
    @_scim
    async def me(request: Request) -> Response:
        q = validate(sc.GetQuery, dict(request.query_params))
        caller = principal(request)

        def load() -> dict[str, Any]:
            p = svc.find(caller.kind, caller.name) or {
                "id": "", "kind": caller.kind, "name": caller.name, "display_name": caller.name,
                "active": True}
            p["is_admin"] = caller.is_admin
            out = render(p)
            if caller.kind == "service_principal":   # Databricks: userName is the applicationId
                out = {**out, "userName": caller.name, "emails": [], "schemas": [sc.USER]}
            return out
        return JSONResponse(_shape(await store.call(load), q.attributes, q.excludedAttributes))

    # -- users and service principals ---------------------------------------------------
    def principal_routes(kind: str, path: str, create_model: type[sc.CreateUser] | type[sc.CreateServicePrincipal]
                         ) -> list[Route]:
        @_scim
        async def list_(request: Request) -> Response:
            q = validate(sc.ListQuery, dict(request.query_params))
            return JSONResponse(await store.call(
                lambda: listing([render(p) for p in svc.all(kind)], q, kind)))

        @_scim
        async def get(request: Request) -> Response:
            q = validate(sc.GetQuery, dict(request.query_params))
            p = await store.call(svc.get, kind, request.path_params["id"])
            return JSONResponse(_shape(await store.call(render, p), q.attributes, q.excludedAttributes))

        @_scim
        async def create(request: Request) -> Response:
            admin_only(request)
            body = validate(create_model, await json_body(request))
            if isinstance(body, sc.CreateUser):
                name, display = body.userName, body.displayName
            else:
                name, display = body.applicationId or svc.new_application_id(), body.displayName
            group_ids = [g.value for g in body.groups or []]

            def make() -> dict[str, Any]:
                groups = [svc.editable_group(g) for g in group_ids]    # checked before the row
                p = svc.create(kind, name, display)
                for g in groups:
                    svc.groups.add_member(g, name, kind)
                return render(p)
            return JSONResponse(await store.call(make))

        @_scim
        async def delete(request: Request) -> Response:
            admin_only(request)
            caller = principal(request)
            await store.call(svc.delete, kind, request.path_params["id"], caller.kind, caller.name)
            return JSONResponse({})

        return [Route(path, list_, methods=["GET"]), Route(path, create, methods=["POST"]),
                Route(path + "/{id}", get, methods=["GET"]), Route(path + "/{id}", delete, methods=["DELETE"])]

    # -- groups -------------------------------------------------------------------------
    @_scim
    async def list_groups(request: Request) -> Response:
        q = validate(sc.ListQuery, dict(request.query_params))
        return JSONResponse(await store.call(
            lambda: listing([render_group(g) for g in svc.group_names_all()], q, "group")))

    @_scim
    async def get_group(request: Request) -> Response:
        q = validate(sc.GetQuery, dict(request.query_params))
        out = await store.call(lambda: render_group(svc.group_by_id(request.path_params["id"])))
        return JSONResponse(_shape(out, q.attributes, q.excludedAttributes))

    @_scim
    async def create_group(request: Request) -> Response:
        admin_only(request)
        body = validate(sc.CreateScimGroup, await json_body(request))
        ids = [m.value for m in body.members or []]
        return JSONResponse(await store.call(
            lambda: render_group(svc.create_group(body.displayName, ids))))

    @_scim
    async def delete_group(request: Request) -> Response:
        admin_only(request)
        await store.call(svc.delete_group, request.path_params["id"])
        return JSONResponse({})

    @_scim
    async def patch_group(request: Request) -> Response:
        admin_only(request)
        body = validate(sc.PatchRequest, await json_body(request))
        gid = request.path_params["id"]
        steps: list[tuple[str, list[str]]] = []
        for i, op in enumerate(body.Operations):
            where = f"Operations.{i}"
            path = (op.path or "").strip()
            one = _REMOVE_ONE.match(path)
            if op.op == "remove" and one:
                steps.append(("remove", [one.group(1)]))
                continue
            if op.op == "replace" or (path and path.lower() != "members"):
                raise invalid(f"{where}: only add and remove of members are supported")
            value = op.value if path else (op.value or {}).get("members") if isinstance(op.value, dict) else None
            if value is None:
                raise invalid(f"{where}.value: a list of members ({{\"value\": id}}) is required")
            members = validate(_Members, {"members": value}, prefix=f"{where}.value").members
            steps.append((op.op, [m.value for m in members]))

        def apply() -> dict[str, Any]:
            svc.editable_group(gid)
            for verb, ids in steps:
                (svc.add_members if verb == "add" else svc.remove_members)(gid, ids)
            return render_group(svc.group_by_id(gid))
        return JSONResponse(await store.call(apply))

    return [
        Route(BASE + "/Me", me, methods=["GET"]),
        *principal_routes("user", BASE + "/Users", sc.CreateUser),
        *principal_routes("service_principal", BASE + "/ServicePrincipals", sc.CreateServicePrincipal),
        Route(BASE + "/Groups", list_groups, methods=["GET"]),
        Route(BASE + "/Groups", create_group, methods=["POST"]),
        Route(BASE + "/Groups/{id}", get_group, methods=["GET"]),
        Route(BASE + "/Groups/{id}", patch_group, methods=["PATCH"]),
        Route(BASE + "/Groups/{id}", delete_group, methods=["DELETE"]),
    ]
