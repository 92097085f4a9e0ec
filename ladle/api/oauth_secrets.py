"""Service principals' OAuth secrets, where databricks-sdk's `service_principal_secrets_proxy`
calls: `/api/2.0/accounts/servicePrincipals/{service_principal_id}/credentials/secrets`
(`service_principal_id` is the SCIM id). Who may call is decided in control/oauth_secrets.py;
store calls run on the store's threads."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ladle.api.bodies import json_body, principal, validate
from ladle.control.oauth_secrets import OAuthSecrets
from ladle.schemas.oauth import CreateServicePrincipalSecretRequest

BASE = "/api/2.0/accounts/servicePrincipals/{service_principal_id}/credentials/secrets"


def routes(secrets: OAuthSecrets) -> list[Route]:
    call = secrets.store.call

    async def create(request: Request) -> Response:
        body = validate(CreateServicePrincipalSecretRequest, await json_body(request))
        out = await call(secrets.create, principal(request), request.path_params["service_principal_id"],
                         body.lifetime, body.scopes)
        return JSONResponse(out, headers={"Cache-Control": "no-store"})

    async def list_secrets(request: Request) -> Response:
        out = await call(secrets.list, principal(request), request.path_params["service_principal_id"])
        return JSONResponse({"secrets": out})

    async def delete(request: Request) -> Response:
        await call(secrets.delete, principal(request), request.path_params["service_principal_id"],
                   request.path_params["secret_id"])
        return JSONResponse({})

    return [
        Route(BASE, create, methods=["POST"]),
        Route(BASE, list_secrets, methods=["GET"]),
        Route(BASE + "/{secret_id}", delete, methods=["DELETE"]),
    ]
