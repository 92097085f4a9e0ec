"""Databricks Apps routes as databricks-sdk's `w.apps` calls them: /api/2.0/apps (create, list,
get, update, delete, start, stop, deployments) and /api/2.0/permissions/apps/{name}.

Any signed-in principal may create an app (and manages it); reading an app needs CAN_USE,
changing, deploying, starting, stopping or deleting it CAN_MANAGE. Bodies and queries are
validated by ladle/schemas/apps.py; the work is in control/apps.py and control/apps_deploy.py.
An app's `url` is this server's base URL + /apps/<name>/."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ladle.api.bodies import json_body, principal, validate
from ladle.control.apps import AppService
from ladle.control.apps_deploy import AppDeployer
from ladle.control.apps_view import levels_response, render_acl
from ladle.schemas import apps as s
from ladle.schemas.errors import invalid


def _base(request: Request) -> str:
    return str(request.base_url)


def _name(request: Request) -> str:
    name = request.path_params["name"]
    if not s.APP_NAME.match(name):      # no such app can exist; say why rather than 404
        raise invalid(f"name: '{name}' is not an app name (2 to 30 lowercase letters, digits and dashes)")
    return name


def routes(apps: AppService, deployer: AppDeployer) -> list[Route]:
    call = apps.store.call

    async def create(request: Request) -> Response:
        body = validate(s.CreateApp, await json_body(request))
        no_compute = request.query_params.get("no_compute", "false").lower() in ("true", "1")
        return JSONResponse(await call(apps.create_sync, principal(request), body, no_compute, _base(request)))

    async def list_apps(request: Request) -> Response:
        return JSONResponse({"apps": await call(apps.list_sync, principal(request), _base(request))})

    async def get(request: Request) -> Response:
        return JSONResponse(await call(apps.get_sync, principal(request), _name(request), _base(request)))

    async def update(request: Request) -> Response:
        name = _name(request)
        body = validate(s.AppBody, await json_body(request))
        return JSONResponse(await call(apps.update_sync, principal(request), name, body, _base(request)))

    async def delete(request: Request) -> Response:
        return JSONResponse(await deployer.delete(principal(request), _name(request), _base(request)))

    async def start(request: Request) -> Response:
        return JSONResponse(await deployer.start(principal(request), _name(request), _base(request)))

    async def stop(request: Request) -> Response:
        return JSONResponse(await deployer.stop(principal(request), _name(request), _base(request)))

    async def deploy(request: Request) -> Response:
        name = _name(request)
        body = validate(s.CreateDeployment, await json_body(request))
        return JSONResponse(await deployer.deploy(principal(request), name, body, _base(request)))

    async def list_deployments(request: Request) -> Response:
        out = await call(apps.deployments_sync, principal(request), _name(request))
        return JSONResponse({"app_deployments": out})

    async def get_deployment(request: Request) -> Response:
        return JSONResponse(await call(apps.deployment_sync, principal(request), _name(request),
                                       request.path_params["deployment_id"]))

    # -- permissions -----------------------------------------------------------------------------
    async def levels(request: Request) -> Response:
        await call(apps.row, principal(request), _name(request))
        return JSONResponse(levels_response())

    async def get_perms(request: Request) -> Response:
        return JSONResponse(render_acl(await call(apps.row, principal(request), _name(request))))

    async def set_perms(request: Request) -> Response:
        name = _name(request)
        body = validate(s.AppPermissionsRequest, await json_body(request))
        entries = [e.entry() for e in body.access_control_list]
        app = await call(apps.set_acl_sync, principal(request), name, entries, request.method == "PATCH")
        return JSONResponse(render_acl(app))

    base, one, perms = "/api/2.0/apps", "/api/2.0/apps/{name}", "/api/2.0/permissions/apps/{name}"
    return [
        Route(base, create, methods=["POST"]),
        Route(base, list_apps, methods=["GET"]),
        Route(one, get, methods=["GET"]),
        Route(one, update, methods=["PATCH"]),
        Route(one, delete, methods=["DELETE"]),
        Route(one + "/start", start, methods=["POST"]),
        Route(one + "/stop", stop, methods=["POST"]),
        Route(one + "/deployments", deploy, methods=["POST"]),
        Route(one + "/deployments", list_deployments, methods=["GET"]),
        Route(one + "/deployments/{deployment_id}", get_deployment, methods=["GET"]),
        Route(perms + "/permissionLevels", levels, methods=["GET"]),
        Route(perms, get_perms, methods=["GET"]),
        Route(perms, set_perms, methods=["PUT"]),
        Route(perms, set_perms, methods=["PATCH"]),
    ]
