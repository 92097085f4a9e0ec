"""Permissions on MLflow experiments and registered models, as Databricks serves them
(`w.permissions.get/set/update/get_permission_levels(request_object_type="experiments" |
"registered-models", ...)`, `w.experiments.*_permissions`, `w.model_registry.*_permissions`).

Object ids: an experiment's id; a registered model's name (the MLflow registry behind ladle
gives models no other id; the SDK puts the id in the path unquoted, so a model whose name holds
a '/' cannot be addressed). Reading them needs CAN_READ, changing them CAN_MANAGE."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ladle.api.bodies import json_body, principal, validate
from ladle.api.mlflow_authz import EXP, MODEL, Lookups
from ladle.control.registry_acl import NOUN, RegistryAcl, levels_response
from ladle.control.registry_rules import LEVELS
from ladle.schemas.errors import ApiError, invalid
from ladle.schemas.registry_permissions import RegistryPermissionsRequest


def routes(acl: RegistryAcl, lookups: Lookups) -> list[Route]:
    def make(object_type: str) -> list[Route]:
        async def _object(request: Request, wanted: str) -> str:
            oid = request.path_params["id"]
            if object_type == EXP and not oid.isdigit():
                raise invalid(f"experiment_id: '{oid}' is not an experiment id")
            p = principal(request)
            if not p.is_admin:
                acl.require(p, object_type, oid, wanted)
            if not await lookups.exists(object_type, oid):
                raise ApiError("RESOURCE_DOES_NOT_EXIST",
                               f"{NOUN[object_type].capitalize()} '{oid}' does not exist.")
            acl.require(p, object_type, oid, wanted)
            return oid

        async def _grants(request: Request) -> list[tuple[str, str, str]]:
            req = validate(RegistryPermissionsRequest, await json_body(request))
            out = []
            for i, e in enumerate(req.access_control_list):
                if e.permission_level not in LEVELS[object_type]:
                    raise invalid(f"access_control_list.{i}.permission_level: must be one of "
                                  f"{', '.join(LEVELS[object_type])} for {object_type}")
                out.append(e.entry())
            return out

        async def levels(request: Request) -> Response:
            await _object(request, "CAN_READ")
            return JSONResponse(levels_response(object_type))

        async def get(request: Request) -> Response:
            return JSONResponse(acl.render(object_type, await _object(request, "CAN_READ")))

        async def put(request: Request) -> Response:
            oid = await _object(request, "CAN_MANAGE")
            await acl.set(object_type, oid, await _grants(request))
            return JSONResponse(acl.render(object_type, oid))

        async def patch(request: Request) -> Response:
            oid = await _object(request, "CAN_MANAGE")
            await acl.update(object_type, oid, await _grants(request))
            return JSONResponse(acl.render(object_type, oid))

        base = f"/api/2.0/permissions/{object_type}/{{id}}"
        return [
            Route(base + "/permissionLevels", levels, methods=["GET"]),
            Route(base, get, methods=["GET"]),
            Route(base, put, methods=["PUT"]),
            Route(base, patch, methods=["PATCH"]),
        ]

    return make(EXP) + make(MODEL)
