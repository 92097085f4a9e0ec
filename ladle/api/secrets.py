"""Databricks secrets routes under /api/2.0/secrets (scopes, put, list, delete).

`GET /api/2.0/secrets/get` exists on Databricks for notebooks; ladle never hands a stored
value back over HTTP (served entities resolve `{{secrets/...}}` references inside the
server), so it answers 403.
"""

from __future__ import annotations

import base64

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ladle.api.bodies import json_body, principal
from ladle.control.secrets import SecretStore
from ladle.schemas.errors import ApiError, invalid


def _str(body: dict, field: str) -> str:
    v = body.get(field)
    if not isinstance(v, str) or not v:
        raise invalid(f"{field}: is required")
    return v


def routes(store: SecretStore) -> list[Route]:
    async def create_scope(request: Request) -> Response:
        body = await json_body(request)
        store.create_scope(principal(request), _str(body, "scope"))
        return JSONResponse({})

    async def list_scopes(request: Request) -> Response:
        return JSONResponse({"scopes": store.list_scopes()})

    async def delete_scope(request: Request) -> Response:
        body = await json_body(request)
        store.delete_scope(principal(request), _str(body, "scope"))
        return JSONResponse({})

    async def put(request: Request) -> Response:
        body = await json_body(request)
        scope, key = _str(body, "scope"), _str(body, "key")
        if isinstance(body.get("string_value"), str):
            value = body["string_value"]
        elif isinstance(body.get("bytes_value"), str):
            try:
                value = base64.b64decode(body["bytes_value"], validate=True).decode()
            except (ValueError, UnicodeDecodeError):
                raise invalid("bytes_value: must be base64 of UTF-8 text") from None
        else:
            raise invalid("string_value: one of string_value or bytes_value is required")
        store.put(principal(request), scope, key, value)
        return JSONResponse({})

    async def list_secrets(request: Request) -> Response:
        scope = request.query_params.get("scope")
        if not scope:
            raise invalid("scope: is required")
        return JSONResponse({"secrets": store.list_secrets(scope)})

    async def delete(request: Request) -> Response:
        body = await json_body(request)
        store.delete(principal(request), _str(body, "scope"), _str(body, "key"))
        return JSONResponse({})

    async def get(request: Request) -> Response:
        raise ApiError("PERMISSION_DENIED", "Secret values are not readable over the API; reference them "
                       "as {{secrets/<scope>/<key>}} in served entity configs.", 403)

    base = "/api/2.0/secrets"
    return [
        Route(base + "/scopes/create", create_scope, methods=["POST"]),
        Route(base + "/scopes/list", list_scopes, methods=["GET"]),
        Route(base + "/scopes/delete", delete_scope, methods=["POST"]),
        Route(base + "/put", put, methods=["POST"]),
        Route(base + "/list", list_secrets, methods=["GET"]),
        Route(base + "/delete", delete, methods=["POST"]),
        Route(base + "/get", get, methods=["GET"]),
    ]
