"""App deployments, start and stop.

A deployment copies the app's workspace folder into LADLE_HOME/apps/<app>/deployments/<id>/
source (later edits of the workspace do not change it), reads its app.yaml
(control/apps_yaml.py), and hands the runner an AppLaunch with the environment a Databricks
App gets. The API answers at once with the deployment IN_PROGRESS; the work goes on in a task
of this server, and the deployment ends SUCCEEDED (it becomes the app's active deployment) or
FAILED with a message naming what is wrong (the last good deployment keeps running). At
server start, apps whose compute is on run their active deployment again."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from pathlib import Path
from typing import Any, Callable

from ladle.control import apps_yaml
from ladle.control.apps import AppService
from ladle.control.apps_view import render_deployment
from ladle.control.workspace_files import WorkspaceFiles, snapshot
from ladle.schemas.apps import AppLaunch, CreateDeployment
from ladle.schemas.errors import ApiError, invalid
from ladle.schemas.principal import Principal

log = logging.getLogger("ladle.apps")
RESERVED = {"DATABRICKS_HOST", "DATABRICKS_CLIENT_ID", "DATABRICKS_CLIENT_SECRET", "DATABRICKS_APP_NAME",
            "DATABRICKS_APP_URL", "DATABRICKS_APP_PORT", "DATABRICKS_WORKSPACE_ID", "DATABRICKS_TOKEN"}


class AppDeployer:
    def __init__(self, apps: AppService, files: WorkspaceFiles, secret_value: Callable[[str, str], str],
                 host_url: str, workspace_id: str) -> None:
        self.apps = apps
        self.store = apps.store
        self.files = files
        self.secret_value = secret_value
        self.host_url = host_url            # the server's own loopback URL (DATABRICKS_HOST)
        self.workspace_id = workspace_id
        self.tasks: dict[asyncio.Task[None], str] = {}     # deployments and starts running here -> app

    def _spawn(self, name: str, coro: Any) -> None:
        t = asyncio.get_running_loop().create_task(coro)
        self.tasks[t] = name
        t.add_done_callback(lambda t: self.tasks.pop(t, None))

    def source_dir(self, name: str, dep_id: str) -> Path:
        return self.apps.apps_dir / name / "deployments" / dep_id / "source"

    def launch(self, app: dict[str, Any], dep_id: str, base_url: str) -> AppLaunch:
        """The AppLaunch of deployment `dep_id` (its snapshot is in place); blocks (disk)."""
        source = self.source_dir(app["name"], dep_id)
        command, env = apps_yaml.parse(source, app.get("resources", []), RESERVED, self.secret_value)
        env.update({
            "DATABRICKS_HOST": self.host_url, "DATABRICKS_CLIENT_ID": app["client_id"],
            "DATABRICKS_CLIENT_SECRET": self.apps.unseal(app["secret"]),
            "DATABRICKS_APP_NAME": app["name"], "DATABRICKS_APP_URL": f"{base_url.rstrip('/')}/apps/{app['name']}/",
            "DATABRICKS_WORKSPACE_ID": self.workspace_id,
        })
        return AppLaunch(app["name"], dep_id, source, command, env)

    # -- deploy ------------------------------------------------------------------------------------
    async def deploy(self, p: Principal, name: str, body: CreateDeployment, base_url: str) -> dict[str, Any]:
        app = await self.store.call(self.apps.row, p, name, "CAN_MANAGE")
        path = body.source_code_path or app.get("default_source_code_path")
        if not path:
            raise invalid("source_code_path: required (the app has no earlier deployment to repeat)")
        if name in self.apps.deploying:
            raise ApiError("RESOURCE_CONFLICT", f"App {name} has a deployment in progress "
                           f"({self.apps.deploying[name]}); wait for it to finish.")
        src = await asyncio.to_thread(self.files.folder, p, path, "source_code_path")
        if name in self.apps.deploying:        # another deploy got here while we looked at the disk
            raise ApiError("RESOURCE_CONFLICT", f"App {name} has a deployment in progress.")
        dep_id = uuid.uuid4().hex
        self.apps.deploying[name] = dep_id
        now = int(time.time() * 1000)
        row = {"source_code_path": path, "mode": body.mode or "SNAPSHOT", "state": "IN_PROGRESS",
               "message": "Deployment is in progress.", "creator": p.name, "updated_ms": now}
        try:
            await self.store.call(self.store.insert_deployment, name, dep_id, row, now)
        except BaseException:
            self.apps.deploying.pop(name, None)
            raise
        self._spawn(name, self._run(name, dep_id, src, path, base_url))
        return render_deployment({**row, "deployment_id": dep_id, "created_ms": now})

    async def _run(self, name: str, dep_id: str, src: Path, path: str, base_url: str) -> None:
        state, message = "FAILED", "Deployment failed."
        try:
            await asyncio.to_thread(snapshot, src, self.source_dir(name, dep_id))
            app = await self.store.call(self.store.app, name)
            if app is None:
                return
            launch = await asyncio.to_thread(self.launch, app, dep_id, base_url)
            await self.apps.runner.deploy(launch, lambda msg: self.apps.progress.__setitem__(dep_id, msg))
            state, message = "SUCCEEDED", "App started successfully"
            await self.store.call(self.apps.save, name, active_deployment=dep_id, compute_on=True,
                                  default_source_code_path=path, base_url=base_url)
        except (apps_yaml.AppYamlError, RuntimeError, OSError) as e:
            message = str(e)
        except ApiError as e:
            message = e.message
        except Exception as e:  # noqa: BLE001 -- a deployment must end; the log keeps the trace
            log.exception("deployment %s of app %s", dep_id, name)
            message = f"Deployment failed: {type(e).__name__}: {e}"
        finally:
            if self.apps.deploying.get(name) == dep_id:
                del self.apps.deploying[name]
            self.apps.progress.pop(dep_id, None)
        await self.store.call(self._finish, name, dep_id, state, message)

    def _finish(self, name: str, dep_id: str, state: str, message: str) -> None:
        d = self.store.deployment(name, dep_id)
        if d is not None:
            keep = {k: v for k, v in d.items() if k not in ("deployment_id", "app", "created_ms")}
            self.store.save_deployment(dep_id, {**keep, "state": state, "message": message,
                                                "updated_ms": int(time.time() * 1000)})

    # -- start and stop ------------------------------------------------------------------------------
    async def start(self, p: Principal, name: str, base_url: str) -> dict[str, Any]:
        app = await self.store.call(self.apps.row, p, name, "CAN_MANAGE")
        await self.store.call(self.apps.save, name, compute_on=True)
        if app.get("active_deployment"):
            self.apps.starting[name] = ""
            self._spawn(name, self._relaunch(name))
        return await self.store.call(self.apps.get_sync, p, name, base_url)

    async def stop(self, p: Principal, name: str, base_url: str) -> dict[str, Any]:
        await self.store.call(self.apps.row, p, name, "CAN_MANAGE")
        await self.store.call(self.apps.save, name, compute_on=False)
        self.apps.starting.pop(name, None)
        await self.apps.runner.stop(name)
        return await self.store.call(self.apps.get_sync, p, name, base_url)

    async def _relaunch(self, name: str) -> None:
        self.apps.starting[name] = ""
        try:
            app = await self.store.call(self.store.app, name)
            if app is None or not app.get("compute_on") or not app.get("active_deployment"):
                self.apps.starting.pop(name, None)
                return
            launch = await asyncio.to_thread(self.launch, app, app["active_deployment"],
                                             app.get("base_url") or self.host_url)
            await self.apps.runner.start(name, launch)
            self.apps.starting.pop(name, None)
        except (apps_yaml.AppYamlError, RuntimeError, OSError) as e:
            self.apps.starting[name] = f"App failed to start: {e}"
        except ApiError as e:
            self.apps.starting[name] = f"App failed to start: {e.message}"
        except Exception as e:  # noqa: BLE001 -- the status says why; the log keeps the trace
            log.exception("starting app %s", name)
            self.apps.starting[name] = f"App failed to start: {type(e).__name__}: {e}"

    async def resume(self) -> None:
        """At server start: deployments in progress when the server stopped failed (with one
        server: with several, another may be running them); apps whose compute is on run their
        active deployment again."""
        apps = await self.store.call(self.store.apps)
        if apps:
            await asyncio.to_thread(getattr, self.apps, "runner")     # made off the event loop
        for app in apps:
            for d in await self.store.call(self.store.deployments, app["name"]):
                if d["state"] == "IN_PROGRESS" and not self.store.shared:   # shared: another server's
                    await self.store.call(self._finish, app["name"], d["deployment_id"], "FAILED",
                                          "The server restarted during the deployment; deploy again.")
            if app.get("compute_on") and app.get("active_deployment"):
                self.apps.starting[app["name"]] = ""
                self._spawn(app["name"], self._relaunch(app["name"]))

    async def delete(self, p: Principal, name: str, base_url: str) -> dict[str, Any]:
        """Delete the app (CAN_MANAGE) once what this server was doing for it has stopped."""
        await self.store.call(self.apps.row, p, name, "CAN_MANAGE")
        await self._cancel([t for t, app in self.tasks.items() if app == name])
        self.apps.deploying.pop(name, None)
        self.apps.starting.pop(name, None)
        return await self.apps.delete(p, name, base_url)

    @staticmethod
    async def _cancel(tasks: list[asyncio.Task[None]]) -> None:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def close(self) -> None:
        await self._cancel(list(self.tasks))
