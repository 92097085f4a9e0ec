"""Token routes, as databricks-sdk's `w.tokens` and `w.token_management` call them (bodies:
ladle.schemas.tokens).

`/api/2.0/token/*` is the caller's own: create, list (only the caller's tokens, admins too),
delete (`POST {token_id}`). `/api/2.0/token-management/*` is the admins' view of every token:
list (filtered by `created_by_id` / `created_by_username`), get, delete, and tokens made on
behalf of a user or service principal. `owner_id` and `created_by_id` are SCIM ids (integers,
as the SDK parses them); `owner_name` and `principal_type` name the owner."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ladle.api.bodies import json_body, principal, validate
from ladle.api.services import Services
from ladle.control.principals import stable_id
from ladle.control.tokens import TokenRecord, token_info
from ladle.schemas.errors import ApiError
from ladle.schemas.principal import Principal
from ladle.schemas.tokens import (
    CreateOboTokenRequest, CreateTokenRequest, DeleteTokenRequest, ListTokensQuery,
)


def _creator_ids(t: TokenRecord) -> set[int]:
    """The SCIM ids the creator may have: a token names only its creator's name, so a creator
    other than the owner is taken to be a user or a service principal of that name."""
    kinds = (t.principal_type,) if t.created_by == t.principal else ("user", "service_principal")
    return {int(stable_id(k, t.created_by)) for k in kinds}


def _own(p: Principal, t: TokenRecord) -> bool:
    return t.principal == p.name and t.principal_type == p.kind


def _require_admin(p: Principal) -> None:
    if not p.is_admin:
        raise ApiError("PERMISSION_DENIED", "Only workspace admins can manage other principals' tokens "
                       "(use /api/2.0/token/list and /api/2.0/token/delete for your own).")


def routes(svc: Services) -> list[Route]:
    tokens = svc.tokens
    workspace_id = int(svc.settings.workspace_id) if svc.settings.workspace_id.isdigit() else None

    def info(t: TokenRecord) -> dict[str, Any]:
        out = token_info(t, int(stable_id(t.principal_type, t.principal)))
        if t.created_by != "ladle":      # "ladle": the server made it (the first admin token)
            kind = t.principal_type if t.created_by == t.principal else "user"   # admins are users
            out["created_by_id"] = int(stable_id(kind, t.created_by))
        if workspace_id is not None:
            out["workspace_id"] = workspace_id
        return out

    async def create_obo(request: Request) -> Response:
        p = principal(request)
        body = validate(CreateOboTokenRequest, await json_body(request))
        user = body.user_name
        if not p.is_admin and not (user == p.name and p.kind == "user"):
            raise ApiError("PERMISSION_DENIED", "Only admins can create tokens for other principals.")
        name, kind = (user, "user") if user is not None else (body.application_id, "service_principal")
        value, rec = await tokens.store.call(tokens.create, name, kind, p.name, body.comment,
                                             body.lifetime_seconds)
        return JSONResponse({"token_value": value, "token_info": info(rec)})

    async def create_own(request: Request) -> Response:
        p = principal(request)
        body = validate(CreateTokenRequest, await json_body(request))
        value, rec = await tokens.store.call(tokens.create, p.name, p.kind, p.name, body.comment,
                                             body.lifetime_seconds, is_admin=False)
        return JSONResponse({"token_value": value, "token_info": info(rec)})

    async def list_own(request: Request) -> Response:
        p = principal(request)
        return JSONResponse({"token_infos": [info(t) for t in tokens.list() if _own(p, t)]})

    async def delete_own(request: Request) -> Response:
        body = validate(DeleteTokenRequest, await json_body(request))
        await tokens.store.call(tokens.revoke, body.token_id, principal(request))
        return JSONResponse({})

    async def list_all(request: Request) -> Response:
        p = principal(request)
        q = validate(ListTokensQuery, dict(request.query_params))
        _require_admin(p)
        found = [t for t in tokens.list()
                 if (q.created_by_username is None or t.created_by == q.created_by_username)
                 and (q.created_by_id is None or q.created_by_id in _creator_ids(t))]
        return JSONResponse({"token_infos": [info(t) for t in found]})

    async def get_one(request: Request) -> Response:
        _require_admin(principal(request))
        token_id = request.path_params["token_id"]
        rec = next((t for t in tokens.list() if t.id == token_id), None)
        if rec is None:
            raise ApiError("RESOURCE_DOES_NOT_EXIST", f"Token with id '{token_id}' does not exist.")
        return JSONResponse({"token_info": info(rec)})

    async def revoke(request: Request) -> Response:
        await tokens.store.call(tokens.revoke, request.path_params["token_id"], principal(request))
        return JSONResponse({})

    return [
        Route("/api/2.0/token-management/on-behalf-of/tokens", create_obo, methods=["POST"]),
        Route("/api/2.0/token/create", create_own, methods=["POST"]),
        Route("/api/2.0/token/list", list_own, methods=["GET"]),
        Route("/api/2.0/token/delete", delete_own, methods=["POST"]),
        Route("/api/2.0/token-management/tokens", list_all, methods=["GET"]),
        Route("/api/2.0/token-management/tokens/{token_id}", get_one, methods=["GET"]),
        Route("/api/2.0/token-management/tokens/{token_id}", revoke, methods=["DELETE"]),
    ]
