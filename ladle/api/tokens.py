"""Token routes, shaped like Databricks' token-management API."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ladle.api.bodies import json_body, principal
from ladle.api.services import Services
from ladle.control.tokens import token_info
from ladle.schemas.errors import ApiError, invalid


def routes(svc: Services) -> list[Route]:
    async def create_obo(request: Request) -> Response:
        p = principal(request)
        body = await json_body(request)
        user, sp = body.get("user_name"), body.get("application_id")
        if bool(user) == bool(sp):
            raise invalid("exactly one of user_name or application_id (service principal) is required")
        if not p.is_admin and not (user == p.name and p.kind == "user"):
            raise ApiError("PERMISSION_DENIED", "Only admins can create tokens for other principals.")
        lifetime = body.get("lifetime_seconds")
        if lifetime is not None and not isinstance(lifetime, int):
            try:
                lifetime = int(lifetime)
            except (TypeError, ValueError):
                raise invalid("lifetime_seconds: must be an integer") from None
        comment = body.get("comment")
        if comment is not None and not isinstance(comment, str):
            raise invalid("comment: must be a string")
        name = user or sp
        if not isinstance(name, str):
            raise invalid("user_name: must be a string")
        value, rec = svc.tokens.create(name, "user" if user else "service_principal", p.name,
                                       comment, lifetime)
        return JSONResponse({"token_value": value, "token_info": token_info(rec)})

    async def create_own(request: Request) -> Response:
        p = principal(request)
        body = await json_body(request)
        value, rec = svc.tokens.create(p.name, p.kind, p.name, body.get("comment"),
                                       body.get("lifetime_seconds"), is_admin=False)
        return JSONResponse({"token_value": value, "token_info": token_info(rec)})

    async def list_tokens(request: Request) -> Response:
        p = principal(request)
        infos = [token_info(t) for t in svc.tokens.list() if p.is_admin or t.principal == p.name]
        return JSONResponse({"token_infos": infos})

    async def revoke(request: Request) -> Response:
        svc.tokens.revoke(request.path_params["token_id"], principal(request))
        return JSONResponse({})

    return [
        Route("/api/2.0/token-management/on-behalf-of/tokens", create_obo, methods=["POST"]),
        Route("/api/2.0/token/create", create_own, methods=["POST"]),
        Route("/api/2.0/token-management/tokens", list_tokens, methods=["GET"]),
        Route("/api/2.0/token/list", list_tokens, methods=["GET"]),
        Route("/api/2.0/token-management/tokens/{token_id}", revoke, methods=["DELETE"]),
    ]
