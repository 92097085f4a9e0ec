"""The plan of a deploy: what to create, update, recreate or delete, from the desired resources,
the state of the last deploy, and whether each recorded resource still exists on the server."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ladle.cli.bundles.state import State

ENDPOINTS, APPS = "model_serving_endpoints", "apps"
# Fields the server can change in place; any other change replaces the resource
IN_PLACE = {
    ENDPOINTS: {"config", "ai_gateway", "tags", "rate_limits", "email_notifications", "permissions",
                "telemetry_config"},
    APPS: {"description", "resources", "user_api_scopes", "config", "permissions", "source_code_path",
           "source_hash", "budget_policy_id", "compute_size"},
}


@dataclass(frozen=True)
class Action:
    verb: str  # create | update | recreate | delete
    rtype: str
    key: str
    name: str
    fields: tuple[str, ...] = ()

    def __str__(self) -> str:
        what = f" ({', '.join(self.fields)})" if self.fields else ""
        return f"{self.verb:<8} {self.rtype}.{self.key} {self.name}{what}"


PENDING = "_pending"  # in a state spec: fields an interrupted update may not have applied


def changed_fields(old: dict[str, Any] | None, new: dict[str, Any]) -> list[str]:
    if old is None:
        return sorted(new)
    pending = set(old.get(PENDING) or [])
    old = {k: v for k, v in old.items() if k != PENDING}
    return sorted(k for k in set(old) | set(new) | pending if k in pending or old.get(k) != new.get(k))


def plan(desired: dict[str, dict[str, dict[str, Any]]], state: State,
         exists: Callable[[str, str], bool]) -> list[Action]:
    """Deletes first (apps before the endpoints they may use), then endpoints, then apps."""
    deletes, changes = [], []
    for rtype in (APPS, ENDPOINTS):
        for key, entry in sorted(state.resources.get(rtype, {}).items()):
            if key not in desired.get(rtype, {}):
                deletes.append(Action("delete", rtype, key, entry.name))
    for rtype in (ENDPOINTS, APPS):
        for key, spec in sorted(desired.get(rtype, {}).items()):
            name = str(spec.get("name"))
            entry = state.get(rtype, key)
            if entry is None:
                changes.append(Action("create", rtype, key, name))
                continue
            if not exists(rtype, entry.name):
                changes.append(Action("create", rtype, key, name, ("missing on the server",)))
                continue
            fields = changed_fields(entry.spec, spec)
            if not fields and entry.name == name:
                continue
            if entry.name != name or not set(fields) <= IN_PLACE[rtype]:
                changes.append(Action("recreate", rtype, key, name, tuple(fields)))
            else:
                changes.append(Action("update", rtype, key, name, tuple(fields)))
    return deletes + changes
