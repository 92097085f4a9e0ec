"""Applying `resources.apps` through the apps API, like the Databricks CLI.

`deploy` creates or updates the app (description, resources, user API scopes: the server grants
the app's own principal each declared serving endpoint) and uploads its source folder to the
bundle's files folder in the workspace; an app's `config` (command, env) is written there as
its app.yaml. `run` starts the app's compute if it is stopped, deploys the uploaded source as a
snapshot, waits for the deployment and prints the app's URL.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from pathlib import Path, PurePosixPath
from typing import Any

import click

from ladle.cli.apps_upload import local_files, upload_folder
from ladle.cli.bundles.endpoints import set_declared_permissions
from ladle.cli.client import ApiClient, delete_if_present, get_or_none, seg

BASE = "/api/2.0/apps"
PERMS = "/api/2.0/permissions/apps"
APP_FIELDS = ("name", "description", "resources", "user_api_scopes", "budget_policy_id", "compute_size")
POLL_S = 1.0


def local_source(root: Path, defined_in: str, source_code_path: str) -> Path:
    """A relative source_code_path is relative to the file that declares it."""
    return (root / defined_in).parent.joinpath(source_code_path).resolve()


def workspace_source(root: Path, file_path: str, local: Path) -> str:
    rel = local.relative_to(root.resolve()).as_posix()
    return str(PurePosixPath(file_path) / rel) if rel != "." else file_path


def app_yaml(config: dict[str, Any]) -> bytes:
    import io

    from ruamel.yaml import YAML

    body: dict[str, Any] = {}
    if config.get("command"):
        body["command"] = list(config["command"])
    if config.get("env"):
        body["env"] = [{("valueFrom" if k == "value_from" else k): v for k, v in e.items()} for e in config["env"]]
    out = io.StringIO()
    YAML(typ="safe", pure=True).dump(body, out)
    return out.getvalue().encode()


def source_hash(local: Path, config: dict[str, Any] | None) -> str:
    digest = hashlib.sha256()
    for rel in local_files(local):
        digest.update(rel.as_posix().encode() + b"\0" + (local / rel).read_bytes() + b"\0")
    if config:
        digest.update(b"app.yaml\0" + app_yaml(config))
    return digest.hexdigest()


def get(client: ApiClient, name: str) -> dict[str, Any] | None:
    return get_or_none(client, f"{BASE}/{seg(name)}")


class AppApplier:
    def __init__(self, client: ApiClient, root: Path, user_name: str, timeout_s: float,
                 echo: Callable[[str], None]) -> None:
        self.client = client
        self.root = root
        self.user_name = user_name
        self.timeout_s = timeout_s
        self.echo = echo

    def create(self, spec: dict[str, Any], local: Path, on_created: Callable[[str], None]) -> str:
        body = {k: spec[k] for k in APP_FIELDS if spec.get(k) is not None}
        created = self.client.call("POST", f"{BASE}?no_compute=true", body) or {}
        on_created(str(created.get("id") or spec["name"]))
        self.upload(spec, local)
        self.set_permissions(spec["name"], None, spec.get("permissions"))
        return str(created.get("id") or spec["name"])

    def update(self, old: dict[str, Any] | None, spec: dict[str, Any], local: Path, fields: tuple[str, ...]) -> None:
        old = old or {}
        if set(fields) & set(APP_FIELDS):
            body = {k: spec.get(k) for k in APP_FIELDS if k in spec or k in old}
            body = {k: (v if v is not None else ([] if k in ("resources", "user_api_scopes") else ""))
                    for k, v in body.items()}
            self.client.call("PATCH", f"{BASE}/{seg(spec['name'])}", body)
        if {"source_hash", "source_code_path", "config"} & set(fields):
            self.upload(spec, local)
        if "permissions" in fields:
            self.set_permissions(spec["name"], old.get("permissions"), spec.get("permissions"))

    def upload(self, spec: dict[str, Any], local: Path) -> None:
        remote = spec["source_code_path"]
        count = upload_folder(self.client, local, remote)
        if spec.get("config"):
            import base64

            self.client.call("POST", "/api/2.0/workspace/import", {
                "path": f"{remote}/app.yaml", "content": base64.b64encode(app_yaml(spec["config"])).decode(),
                "format": "AUTO", "overwrite": True})
        self.echo(f"Uploaded {count} file(s) of {spec['name']} to {remote}")

    def delete(self, name: str) -> None:
        delete_if_present(self.client, f"{BASE}/{seg(name)}")

    def set_permissions(self, name: str, old: list[dict[str, Any]] | None, new: list[dict[str, Any]] | None) -> None:
        set_declared_permissions(self.client, f"{PERMS}/{seg(name)}", self.user_name, old, new)

    def run(self, spec: dict[str, Any]) -> str:
        """Start the app if it is stopped, deploy its uploaded source, wait; return its URL."""
        name = spec["name"]
        app = get(self.client, name)
        if app is None:
            raise click.ClickException(f"app {name} does not exist: run `ladle bundle deploy` first")
        state = (app.get("compute_status") or {}).get("state")
        self.echo(f"✓ App compute is in {state or 'UNKNOWN'} state")
        if state in (None, "STOPPED", "ERROR"):
            self.echo(f"✓ Starting the app {name}")
            self.client.call("POST", f"{BASE}/{seg(name)}/start", {})
        if state != "ACTIVE":
            app = self._wait_app_active(name)
        deployment = self.client.call("POST", f"{BASE}/{seg(name)}/deployments",
                                      {"source_code_path": spec["source_code_path"], "mode": "SNAPSHOT"}) or {}
        self._wait_deployment(name, str(deployment.get("deployment_id")))
        app = get(self.client, name) or app
        return str(app.get("url") or "")

    def _wait_app_active(self, name: str) -> dict[str, Any]:
        deadline = time.monotonic() + self.timeout_s
        last = None
        while True:
            app = get(self.client, name) or {}
            status = app.get("compute_status") or {}
            state = status.get("state")
            if state != last:
                self.echo(f"✓ App compute is in {state} state")
                last = state
            if state == "ACTIVE":
                return app
            if state == "ERROR":
                raise click.ClickException(f"app {name} failed to start: {status.get('message') or state}")
            if time.monotonic() > deadline:
                raise click.ClickException(f"timed out waiting for app {name} to start (compute {state})")
            time.sleep(POLL_S)

    def _wait_deployment(self, name: str, deployment_id: str) -> None:
        deadline = time.monotonic() + self.timeout_s
        last = None
        while True:
            got = self.client.call("GET", f"{BASE}/{seg(name)}/deployments/{seg(deployment_id)}") or {}
            status = got.get("status") or {}
            state, message = status.get("state"), status.get("message") or ""
            if (state, message) != last:
                self.echo(f"✓ {message or state}")
                last = (state, message)
            if state == "SUCCEEDED":
                return
            if state in ("FAILED", "CANCELLED"):
                raise click.ClickException(f"deployment of app {name} {state.lower()}: {message}")
            if time.monotonic() > deadline:
                raise click.ClickException(f"timed out waiting for the deployment of app {name} ({state})")
            time.sleep(POLL_S)

