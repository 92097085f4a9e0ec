"""Token routes, shaped like Databricks' token-management API (bodies: ladle.schemas.tokens)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ladle.api.bodies import json_body, principal, validate
from ladle.api.services import Services
from ladle.control.tokens import token_info
from ladle.schemas.errors import ApiError
from ladle.schemas.tokens import CreateOboTokenRequest, CreateTokenRequest


def routes(svc: Services) -> list[Route]:
    async def create_obo(request: Request) -> Response:
        p = principal(request)
        body = validate(CreateOboTokenRequest, await json_body(request))
        user = body.user_name
        if not p.is_admin and not (user == p.name and p.kind == "user"):
            raise ApiError("PERMISSION_DENIED", "Only admins can create tokens for other principals.")
        name, kind = (user, "user") if user is not None else (body.application_id, "service_principal")
        value, rec = await svc.tokens.store.call(svc.tokens.create, name, kind, p.name, body.comment,
                                             body.lifetime_seconds)
        return JSONResponse({"token_value": value, "token_info": token_info(rec)})

    async def create_own(request: Request) -> Response:
        p = principal(request)
        body = validate(CreateTokenRequest, await json_body(request))
        value, rec = await svc.tokens.store.call(svc.tokens.create, p.name, p.kind, p.name, body.comment,
                                             body.lifetime_seconds, is_admin=False)
        return JSONResponse({"token_value": value, "token_info": token_info(rec)})

    async def list_tokens(request: Request) -> Response:
        p = principal(request)
        infos = [token_info(t) for t in svc.tokens.list() if p.is_admin or t.principal == p.name]
        return JSONResponse({"token_infos": infos})

    async def revoke(request: Request) -> Response:
        await svc.tokens.store.call(svc.tokens.revoke, request.path_params["token_id"], principal(request))
        return JSONResponse({})

    return [
        Route("/api/2.0/token-management/on-behalf-of/tokens", create_obo, methods=["POST"]),
        Route("/api/2.0/token/create", create_own, methods=["POST"]),
        Route("/api/2.0/token-management/tokens", list_tokens, methods=["GET"]),
        Route("/api/2.0/token/list", list_tokens, methods=["GET"]),
        Route("/api/2.0/token-management/tokens/{token_id}", revoke, methods=["DELETE"]),
    ]
