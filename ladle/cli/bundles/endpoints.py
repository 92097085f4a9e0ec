"""Applying `resources.model_serving_endpoints` through the serving-endpoints API.

Create posts the endpoint and waits until its config update settles; update calls the one API
of each changed field (config, AI gateway, tags, rate limits, notifications, telemetry,
permissions); delete removes it. Permissions replace only the grants the bundle declared (before
and now): grants made elsewhere, such as an app's own principal's, are kept, and the deploying
user keeps CAN_MANAGE.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ladle.cli.client import ApiClient, delete_if_present, get_or_none, seg
from ladle.cli.serving_endpoints_lro import wait_not_updating

BASE = "/api/2.0/serving-endpoints"
PERMS = "/api/2.0/permissions/serving-endpoints"
PRINCIPAL_KEYS = ("user_name", "group_name", "service_principal_name")
NOT_SENT = ("permissions", "lifecycle")


def exists(client: ApiClient, name: str) -> bool:
    return get(client, name) is not None


def get(client: ApiClient, name: str) -> dict[str, Any] | None:
    return get_or_none(client, f"{BASE}/{seg(name)}")


class EndpointApplier:
    def __init__(self, client: ApiClient, user_name: str, timeout_s: float, echo: Callable[[str], None]) -> None:
        self.client = client
        self.user_name = user_name
        self.timeout_s = timeout_s
        self.echo = echo

    def create(self, spec: dict[str, Any], on_created: Callable[[str], None]) -> str:
        """Create, report the id as soon as the server has it, wait until ready; returns the id."""
        body = {k: v for k, v in spec.items() if k not in NOT_SENT}
        created = self.client.call("POST", BASE, body) or {}
        endpoint_id = str(created.get("id") or "")
        on_created(endpoint_id)
        self._wait(spec["name"])
        self.set_permissions(endpoint_id, None, spec.get("permissions"))
        return endpoint_id

    def update(self, endpoint_id: str, old: dict[str, Any] | None, spec: dict[str, Any], fields: tuple[str, ...]) -> None:
        name = seg(spec["name"])
        old = old or {}
        if "config" in fields and spec.get("config"):
            self.client.call("PUT", f"{BASE}/{name}/config", spec["config"])
            self._wait(spec["name"])
        if "ai_gateway" in fields:
            self.client.call("PUT", f"{BASE}/{name}/ai-gateway", spec.get("ai_gateway") or {})
        if "tags" in fields:
            new_tags = {t["key"]: t for t in spec.get("tags") or []}
            gone = [k for k in (t["key"] for t in old.get("tags") or []) if k not in new_tags]
            self.client.call("PATCH", f"{BASE}/{name}/tags",
                             {"add_tags": list(new_tags.values()), "delete_keys": gone})
        if "rate_limits" in fields:
            self.client.call("PUT", f"{BASE}/{name}/rate-limits", {"rate_limits": spec.get("rate_limits") or []})
        if "email_notifications" in fields:
            self.client.call("PATCH", f"{BASE}/{name}/notifications",
                             {"email_notifications": spec.get("email_notifications") or {}})
        if "telemetry_config" in fields:
            self.client.call("PATCH", f"{BASE}/{name}/telemetry-config",
                             {"telemetry_config": spec.get("telemetry_config") or {}})
        if "permissions" in fields:
            self.set_permissions(endpoint_id, old.get("permissions"), spec.get("permissions"))

    def delete(self, name: str) -> None:
        delete_if_present(self.client, f"{BASE}/{seg(name)}")

    def set_permissions(self, endpoint_id: str, old: list[dict[str, Any]] | None,
                        new: list[dict[str, Any]] | None) -> None:
        set_declared_permissions(self.client, f"{PERMS}/{seg(endpoint_id)}", self.user_name, old, new)

    def _wait(self, name: str) -> None:
        endpoint = wait_not_updating(self.client, name, self.timeout_s)
        ready = (endpoint.get("state") or {}).get("ready")
        if ready and ready != "READY":
            from click import ClickException

            raise ClickException(f"endpoint {name} is {ready} after its update")


def set_declared_permissions(client: ApiClient, path: str, user_name: str, old: list[dict[str, Any]] | None,
                             new: list[dict[str, Any]] | None) -> None:
    """Replace the direct grants at `path` (a permissions API object) that the bundle declared
    before (`old`) with those it declares now (`new`); grants made elsewhere are kept and the
    deploying user keeps CAN_MANAGE."""
    if not old and not new:
        return
    declared_before = {principal_of(p) for p in old or []}
    current = client.call("GET", path) or {}
    acl: dict[tuple[str, str], str] = {}
    for entry in current.get("access_control_list") or []:
        who = principal_of(entry)
        levels = [p.get("permission_level") for p in entry.get("all_permissions") or [] if not p.get("inherited")]
        if who[1] and levels and who not in declared_before:
            acl[who] = str(levels[0])
    for p in new or []:
        acl[principal_of(p)] = p["level"]
    acl[("user_name", user_name)] = "CAN_MANAGE"
    client.call("PUT", path, {"access_control_list": [
        {kind: name, "permission_level": level} for (kind, name), level in acl.items()]})


def principal_of(entry: dict[str, Any]) -> tuple[str, str]:
    for kind in PRINCIPAL_KEYS:
        if entry.get(kind):
            return kind, str(entry[kind])
    return "user_name", ""
