"""A bundle's deploy and destroy: desired specs, the plan, and applying it with the state kept."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from ladle.cli.bundles import apps as app_api
from ladle.cli.bundles import endpoints as endpoint_api
from ladle.cli.bundles.planner import APPS, ENDPOINTS, PENDING, Action, plan
from ladle.cli.bundles.resolve import Bundle
from ladle.cli.bundles.coerce import coerce_endpoint
from ladle.cli.bundles.state import Entry, State
from ladle.cli.client import ApiClient, ApiError

GONE_POLL_S = 0.5


def app_source(bundle: Bundle, key: str) -> Path:
    """The local folder of an app (source_code_path is relative to the file that declares it)."""
    item = bundle.resources[APPS][key]
    loc = bundle.locs.of(("resources", APPS, key, "source_code_path")) or bundle.locs.of(("resources", APPS, key))
    return app_api.local_source(bundle.root, loc.file if loc else ".", str(item.get("source_code_path") or "."))


def desired(bundle: Bundle) -> dict[str, dict[str, dict[str, Any]]]:
    """What the server should hold, as compared with the state (apps carry their source's hash)."""
    endpoints = {key: coerce_endpoint({k: v for k, v in item.items() if k != "lifecycle"})
                 for key, item in bundle.resources.get(ENDPOINTS, {}).items()}
    apps = {}
    for key, item in bundle.resources.get(APPS, {}).items():
        spec = {k: v for k, v in item.items() if k != "lifecycle"}
        local = app_source(bundle, key)
        spec["source_code_path"] = app_api.workspace_source(bundle.root, bundle.file_path, local)
        spec["source_hash"] = app_api.source_hash(local, item.get("config"))
        apps[key] = spec
    return {ENDPOINTS: endpoints, APPS: apps}


class Deployer:
    def __init__(self, client: ApiClient, bundle: Bundle, state: State, timeout_s: float,
                 echo: Callable[[str], None]) -> None:
        self.client = client
        self.bundle = bundle
        self.state = state
        self.echo = echo
        self.timeout_s = timeout_s
        self.endpoints = endpoint_api.EndpointApplier(client, bundle.user_name, timeout_s, echo)
        self.apps = app_api.AppApplier(client, bundle.root, bundle.user_name, timeout_s, echo)
        self.specs: dict[str, dict[str, dict[str, Any]]] = {}

    def exists(self, rtype: str, name: str) -> bool:
        getter = endpoint_api.get if rtype == ENDPOINTS else app_api.get
        return getter(self.client, name) is not None

    def plan(self) -> list[Action]:
        self.specs = desired(self.bundle)
        return plan(self.specs, self.state, self.exists)

    def destroy_plan(self) -> list[Action]:
        return plan({}, self.state, self.exists)

    def apply(self, actions: list[Action]) -> None:
        for action in actions:
            self.echo(f"{action.verb.capitalize()[:-1] + 'ing'} {action.rtype}.{action.key} ({action.name})...")
            if action.verb in ("delete", "recreate"):
                entry = self.state.get(action.rtype, action.key)
                if entry is not None:
                    self._delete(action.rtype, entry.name)
                    self.state.drop(action.rtype, action.key)
            if action.verb in ("create", "recreate"):
                self._create(action.rtype, action.key)
            elif action.verb == "update":
                self._update(action)

    def _delete(self, rtype: str, name: str) -> None:
        """Delete and wait until the server no longer has it (a recreate reuses the name)."""
        (self.endpoints if rtype == ENDPOINTS else self.apps).delete(name)
        deadline = time.monotonic() + self.timeout_s
        while self.exists(rtype, name):
            if time.monotonic() > deadline:
                raise click.ClickException(f"{rtype} {name} is still there {self.timeout_s:g}s after its delete")
            time.sleep(GONE_POLL_S)

    def _create(self, rtype: str, key: str) -> None:
        spec = self.specs[rtype][key]

        def created(ident: str) -> None:
            self.state.put(rtype, key, Entry(spec["name"], ident or None, None))

        if rtype == ENDPOINTS:
            ident = self.endpoints.create(spec, created)
        else:
            ident = self.apps.create(spec, app_source(self.bundle, key), created)
        self.state.put(rtype, key, Entry(spec["name"], ident or None, spec))

    def _update(self, action: Action) -> None:
        spec = self.specs[action.rtype][action.key]
        entry = self.state.get(action.rtype, action.key)
        assert entry is not None  # the planner updates only what the state holds
        old = {k: v for k, v in (entry.spec or {}).items() if k != PENDING}
        # until every field is applied, the next deploy applies these again (not a recreate)
        entry.spec = {**old, PENDING: sorted(set(action.fields) | set((entry.spec or {}).get(PENDING, [])))}
        self.state.put(action.rtype, action.key, entry)
        if action.rtype == ENDPOINTS:
            self.endpoints.update(entry.id or "", old, spec, action.fields)
        else:
            self.apps.update(old, spec, app_source(self.bundle, action.key), action.fields)
        self.state.put(action.rtype, action.key, Entry(spec["name"], entry.id, spec))

    def remove_files(self) -> None:
        """The bundle's workspace folder (its uploaded files), as `destroy` leaves nothing behind."""
        try:
            self.client.call("POST", "/api/2.0/workspace/delete", {"path": self.bundle.root_path, "recursive": True})
        except ApiError as exc:
            if exc.status not in (404, 400) and exc.error_code != "RESOURCE_DOES_NOT_EXIST":
                raise click.ClickException(f"cannot delete {self.bundle.root_path}: {exc.message}") from None
