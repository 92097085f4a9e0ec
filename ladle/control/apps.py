"""Apps: create, read, update and delete them, and who may use them.

Each app gets its own service principal (a SCIM row whose displayName is the app's name and
whose name is a fresh applicationId) and one OAuth client secret: the secret's hash goes
where every client secret's does (control/oauth_secrets.py, for verification), its plaintext
sealed in the app's row (the runner hands it to the app at every start). The app's
resources grant that principal their permissions (control/apps_grants.py). Deleting the app
deletes the principal, its secret and its grants, and the app's deployments and files.

Deployments, start and stop are in control/apps_deploy.py. Methods named `*_sync` block
(store and disk): the async ones run them on the store's threads."""

from __future__ import annotations

import asyncio
import shutil
import threading
import time
import uuid
from pathlib import Path
from typing import Any, Callable, Protocol

from ladle.control.apps_grants import AppGrants
from ladle.control.apps_view import app_level, compute_and_app, iso, render_deployment
from ladle.control.oauth_secrets import OAuthSecrets
from ladle.control.principals import PrincipalService
from ladle.control.store import Store
from ladle.schemas.apps import AppBody, AppLaunch, CreateApp
from ladle.schemas.errors import ApiError
from ladle.schemas.oauth import MAX_SECRET_LIFETIME_S
from ladle.schemas.principal import Principal


class Runner(Protocol):
    """What the app service needs of the app runner (ladle/runtimes/app_runner.py)."""

    async def deploy(self, launch: AppLaunch, on_progress: Callable[[str], None]) -> None: ...
    async def start(self, app_name: str, launch: AppLaunch | None = None) -> None: ...
    async def stop(self, app_name: str) -> None: ...
    async def remove(self, app_name: str) -> None: ...
    def status(self, app_name: str) -> tuple[str, str, str]: ...
    def port(self, app_name: str) -> int | None: ...
    def log_path(self, app_name: str) -> Path: ...
    async def close(self) -> None: ...


def missing(name: str) -> ApiError:
    return ApiError("RESOURCE_DOES_NOT_EXIST", f"App with name {name} does not exist.")


class AppService:
    def __init__(self, store: Store, principals: PrincipalService, oauth_secrets: OAuthSecrets,
                 grants: AppGrants, runner: Callable[[], Runner], apps_dir: Path,
                 seal: Callable[[str], str], unseal: Callable[[str], str]) -> None:
        self.store = store
        self.principals = principals
        self.oauth_secrets = oauth_secrets
        self.grants = grants
        # Made on first use, off the event loop (it probes the sandbox with subprocesses): by the
        # first app's render on the store's threads, or at start when apps exist. A server with
        # no apps makes none.
        self._make_runner = runner
        self._runner: Runner | None = None
        self._runner_lock = threading.Lock()
        self.apps_dir = apps_dir
        self.seal = seal
        self.unseal = unseal
        self.deploying: dict[str, str] = {}        # app -> deployment id being deployed here
        self.progress: dict[str, str] = {}         # deployment id -> the runner's last word
        self.starting: dict[str, str] = {}         # app -> "" while starting here, or why it failed

    @property
    def runner(self) -> Runner:
        if self._runner is None:
            with self._runner_lock:
                if self._runner is None:
                    self._runner = self._make_runner()
        return self._runner

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.close()

    # -- reads ---------------------------------------------------------------------------------
    def row(self, p: Principal, name: str, wanted: str = "CAN_USE") -> dict[str, Any]:
        app = self.store.app(name)
        level = None if app is None else app_level(p, app)
        if app is None or level is None:
            raise missing(name)      # an app the caller cannot see does not exist for them
        if wanted == "CAN_MANAGE" and level != "CAN_MANAGE":
            raise ApiError("PERMISSION_DENIED", f"Principal {p.name} does not have CAN_MANAGE "
                           f"permission on app {name}.", 403)
        return app

    def level(self, p: Principal, name: str) -> str | None:
        """`p`'s permission on app `name` (None: none, or no such app); blocks."""
        app = self.store.app(name)
        return None if app is None else app_level(p, app)

    def render(self, app: dict[str, Any], base_url: str) -> dict[str, Any]:
        dep_id = self.deploying.get(app["name"])
        compute, status = compute_and_app(app, self.runner.status(app["name"]), dep_id is not None,
                                          self.starting.get(app["name"]))
        out: dict[str, Any] = {
            "name": app["name"], "id": app["id"], "description": app.get("description", ""),
            "url": f"{base_url.rstrip('/')}/apps/{app['name']}/",
            "creator": app["creator"], "updater": app.get("updater", app["creator"]),
            "create_time": iso(app["created_ms"]), "update_time": iso(app.get("updated_ms", app["created_ms"])),
            "resources": app.get("resources", []), "effective_resources": app.get("resources", []),
            "service_principal_id": int(app["sp_id"]), "service_principal_client_id": app["client_id"],
            "service_principal_name": app["name"], "compute_status": compute, "app_status": status,
            "compute_size": "MEDIUM",
        }
        if app.get("user_api_scopes"):
            out["user_api_scopes"] = out["effective_user_api_scopes"] = app["user_api_scopes"]
        if app.get("default_source_code_path"):
            out["default_source_code_path"] = app["default_source_code_path"]
        for key, dep in (("active_deployment", app.get("active_deployment")), ("pending_deployment", dep_id)):
            d = dep and self.store.deployment(app["name"], dep)
            if d:
                out[key] = render_deployment(d, self.progress.get(d["deployment_id"]))
        return out

    def get_sync(self, p: Principal, name: str, base_url: str) -> dict[str, Any]:
        return self.render(self.row(p, name), base_url)

    def list_sync(self, p: Principal, base_url: str) -> list[dict[str, Any]]:
        return [self.render(a, base_url) for a in self.store.apps() if app_level(p, a) is not None]

    def deployments_sync(self, p: Principal, name: str) -> list[dict[str, Any]]:
        self.row(p, name)
        return [render_deployment(d, self.progress.get(d["deployment_id"])) for d in self.store.deployments(name)]

    def deployment_sync(self, p: Principal, name: str, dep_id: str) -> dict[str, Any]:
        self.row(p, name)
        d = self.store.deployment(name, dep_id)
        if d is None:
            raise ApiError("RESOURCE_DOES_NOT_EXIST", f"Deployment {dep_id} of app {name} does not exist.")
        return render_deployment(d, self.progress.get(dep_id))

    # -- changes -------------------------------------------------------------------------------
    def create_sync(self, p: Principal, body: CreateApp, no_compute: bool, base_url: str) -> dict[str, Any]:
        resources = [r.model_dump(exclude_none=True) for r in body.resources or []]
        if self.store.app(body.name) is not None:
            raise ApiError("RESOURCE_ALREADY_EXISTS", f"An app with name {body.name} already exists.")
        self.grants.check(p, resources)          # before anything changes
        client_id = self.principals.new_application_id()
        sp = self.principals.create("service_principal", client_id, body.name)
        inserted = False
        try:
            secret = self.oauth_secrets.create(Principal(name=client_id, kind="service_principal"),
                                               sp["id"], str(MAX_SECRET_LIFETIME_S), None)
            ptype = "service_principal_name" if p.kind == "service_principal" else "user_name"
            now = int(time.time() * 1000)
            data = {"description": body.description or "", "resources": resources,
                    "user_api_scopes": body.user_api_scopes or [], "creator": p.name, "updater": p.name,
                    "updated_ms": now, "sp_id": sp["id"], "client_id": client_id,
                    "secret": self.seal(secret["secret"]), "compute_on": not no_compute,
                    "acl": [[ptype, p.name, "CAN_MANAGE"]], "active_deployment": None,
                    "default_source_code_path": None}
            if not self.store.insert_app(body.name, uuid.uuid4().hex, data, now):
                raise ApiError("RESOURCE_ALREADY_EXISTS", f"An app with name {body.name} already exists.")
            inserted = True
            self.grants.apply(client_id, [], resources)
        except BaseException:
            if inserted:
                self.store.delete_app(body.name)
            self.principals.delete("service_principal", sp["id"], p.kind, p.name)
            raise
        return self.render(self.row(p, body.name), base_url)

    def update_sync(self, p: Principal, name: str, body: AppBody, base_url: str) -> dict[str, Any]:
        app = self.row(p, name, "CAN_MANAGE")
        if body.name is not None and body.name != name:
            raise ApiError("INVALID_PARAMETER_VALUE", f"name: an app cannot be renamed ('{name}' "
                           f"to '{body.name}')")
        data = {k: v for k, v in app.items() if k not in ("name", "id", "created_ms")}
        if body.resources is not None:
            resources = [r.model_dump(exclude_none=True) for r in body.resources]
            self.grants.check(p, resources, app.get("resources", []))
            self.grants.apply(app["client_id"], app.get("resources", []), resources)
            data["resources"] = resources
        if body.description is not None:
            data["description"] = body.description
        if body.user_api_scopes is not None:
            data["user_api_scopes"] = body.user_api_scopes
        data.update(updater=p.name, updated_ms=int(time.time() * 1000))
        self.store.save_app(name, data)
        return self.render(self.row(p, name), base_url)

    def set_acl_sync(self, p: Principal, name: str, entries: list[tuple[str, str, str]],
                     merge: bool) -> dict[str, Any]:
        app = self.row(p, name, "CAN_MANAGE")
        acl = {(e[0], e[1]): e[2] for e in app.get("acl", [])} if merge else {}
        for ptype, who, lvl in entries:
            acl[(ptype, who)] = lvl
        data = {k: v for k, v in app.items() if k not in ("name", "id", "created_ms")}
        data["acl"] = [[t, n, lvl] for (t, n), lvl in sorted(acl.items())]
        self.store.save_app(name, data)
        return {**app, **data}

    def save(self, name: str, **changes: Any) -> None:
        """Change fields of app `name`'s row (if it still exists); blocks."""
        app = self.store.app(name)
        if app is not None:
            data = {k: v for k, v in app.items() if k not in ("name", "id", "created_ms")}
            self.store.save_app(name, {**data, **changes})

    async def delete(self, p: Principal, name: str, base_url: str) -> dict[str, Any]:
        app = await self.store.call(self.row, p, name, "CAN_MANAGE")
        out = await self.store.call(self.render, app, base_url)
        await self.runner.remove(name)

        def forget() -> None:
            try:
                self.principals.delete("service_principal", app["sp_id"], p.kind, p.name)
            except ApiError:
                pass                  # the principal was deleted through SCIM already
            self.store.delete_app(name)

        await self.store.call(forget)
        await asyncio.to_thread(shutil.rmtree, self.apps_dir / name, True)
        out["compute_status"] = {"state": "DELETING", "message": "App is being deleted."}
        return out
