"""Databricks secrets routes under /api/2.0/secrets: scopes, secrets and secret ACLs.

Every body and query is validated by its schema (ladle/schemas/secrets.py); who may call what
is decided in control/secret_acls.py. Store calls run on the store's threads (`Store.call`),
never on the event loop.

`GET /api/2.0/secrets/get` exists on Databricks for notebooks (dbutils); ladle never hands a
stored value back over HTTP (served entities resolve `{{secrets/...}}` references inside the
server), so it answers 403 to everyone, whatever their permission on the scope.
"""

from __future__ import annotations

from typing import TypeVar

from pydantic import BaseModel
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ladle.api.bodies import json_body, principal, validate
from ladle.control.secrets import SecretStore
from ladle.schemas import secrets as s
from ladle.schemas.errors import ApiError


M = TypeVar("M", bound=BaseModel)


def _query(request: Request, model: type[M]) -> M:
    return validate(model, dict(request.query_params))


def routes(store: SecretStore) -> list[Route]:
    call = store.store.call     # the store's threads: bounded, a 503 when the database is away

    async def create_scope(request: Request) -> Response:
        body = validate(s.CreateScope, await json_body(request))
        await call(store.create_scope, principal(request), body.scope, body.initial_manage_principal)
        return JSONResponse({})

    async def list_scopes(request: Request) -> Response:
        return JSONResponse({"scopes": await call(store.list_scopes, principal(request))})

    async def delete_scope(request: Request) -> Response:
        body = validate(s.ScopeRef, await json_body(request))
        await call(store.delete_scope, principal(request), body.scope)
        return JSONResponse({})

    async def put(request: Request) -> Response:
        body = validate(s.PutSecret, await json_body(request))
        await call(store.put, principal(request), body.scope, body.key, body.value)
        return JSONResponse({})

    async def list_secrets(request: Request) -> Response:
        q = _query(request, s.ScopeRef)
        return JSONResponse({"secrets": await call(store.list_secrets, principal(request), q.scope)})

    async def delete(request: Request) -> Response:
        body = validate(s.SecretRef, await json_body(request))
        await call(store.delete, principal(request), body.scope, body.key)
        return JSONResponse({})

    async def get(request: Request) -> Response:
        _query(request, s.SecretRef)
        raise ApiError("PERMISSION_DENIED", "Secret values are not readable over the API; reference them "
                       "as {{secrets/<scope>/<key>}} in served entity configs.", 403)

    async def put_acl(request: Request) -> Response:
        body = validate(s.PutAcl, await json_body(request))
        await call(store.put_acl, principal(request), body.scope, body.principal, body.permission)
        return JSONResponse({})

    async def get_acl(request: Request) -> Response:
        q = _query(request, s.AclRef)
        return JSONResponse(await call(store.get_acl, principal(request), q.scope, q.principal))

    async def list_acls(request: Request) -> Response:
        q = _query(request, s.ScopeRef)
        return JSONResponse({"items": await call(store.list_acls, principal(request), q.scope)})

    async def delete_acl(request: Request) -> Response:
        body = validate(s.AclRef, await json_body(request))
        await call(store.delete_acl, principal(request), body.scope, body.principal)
        return JSONResponse({})

    base = "/api/2.0/secrets"
    return [
        Route(base + "/scopes/create", create_scope, methods=["POST"]),
        Route(base + "/scopes/list", list_scopes, methods=["GET"]),
        Route(base + "/scopes/delete", delete_scope, methods=["POST"]),
        Route(base + "/put", put, methods=["POST"]),
        Route(base + "/list", list_secrets, methods=["GET"]),
        Route(base + "/delete", delete, methods=["POST"]),
        Route(base + "/get", get, methods=["GET"]),
        Route(base + "/acls/put", put_acl, methods=["POST"]),
        Route(base + "/acls/get", get_acl, methods=["GET"]),
        Route(base + "/acls/list", list_acls, methods=["GET"]),
        Route(base + "/acls/delete", delete_acl, methods=["POST"]),
    ]
