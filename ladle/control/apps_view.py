"""How apps and deployments look on the wire (databricks-sdk's `App` and `AppDeployment`),
and who may do what to an app (CAN_USE < CAN_MANAGE, kept in the app's row)."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from ladle.schemas.apps import APP_LEVELS
from ladle.schemas.principal import Principal

APP_RANK = {lvl: i for i, lvl in enumerate(APP_LEVELS)}
LEVEL_DESCRIPTIONS = {"CAN_USE": "Can open the app", "CAN_MANAGE": "Can deploy, edit, delete and "
                      "set permissions on the app"}
NOT_DEPLOYED = "App has not been deployed yet. Run your app by deploying source code"


def iso(ms: int | None) -> str | None:
    if ms is None:
        return None
    return datetime.fromtimestamp(ms / 1000, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def app_level(p: Principal, app: dict[str, Any]) -> str | None:
    if p.is_admin:
        return "CAN_MANAGE"
    best = -1
    for ptype, name, lvl in app.get("acl", ()):
        if ((ptype == "user_name" and p.kind == "user" and name == p.name)
                or (ptype == "service_principal_name" and p.kind == "service_principal" and name == p.name)
                or (ptype == "group_name" and (name in p.groups or name == "users"))):
            best = max(best, APP_RANK[lvl])
    return APP_LEVELS[best] if best >= 0 else None


def render_acl(app: dict[str, Any]) -> dict[str, Any]:
    acl = [{ptype: name, "display_name": name,
            "all_permissions": [{"permission_level": lvl, "inherited": False}]}
           for ptype, name, lvl in sorted(tuple(e) for e in app.get("acl", ()))]
    acl.append({"group_name": "admins", "display_name": "admins",
                "all_permissions": [{"permission_level": "CAN_MANAGE", "inherited": True,
                                     "inherited_from_object": ["/apps/"]}]})
    return {"object_id": f"/apps/{app['id']}", "object_type": "apps", "access_control_list": acl}


def levels_response() -> dict[str, Any]:
    return {"permission_levels": [{"permission_level": lvl, "description": LEVEL_DESCRIPTIONS[lvl]}
                                  for lvl in APP_LEVELS]}


def render_deployment(d: dict[str, Any], progress: str | None = None) -> dict[str, Any]:
    message = progress if d["state"] == "IN_PROGRESS" and progress else d.get("message", "")
    out = {"deployment_id": d["deployment_id"], "source_code_path": d["source_code_path"],
           "mode": d.get("mode", "SNAPSHOT"), "creator": d["creator"],
           "create_time": iso(d["created_ms"]), "update_time": iso(d.get("updated_ms", d["created_ms"])),
           "status": {"state": d["state"], "message": message}}
    if d.get("command"):
        out["deployment_artifacts"] = {"source_code_path": d["source_code_path"]}
    return out


def compute_and_app(app: dict[str, Any], runner_status: tuple[str, str, str], deploying: bool,
                    start: str | None = None) -> tuple[dict[str, str], dict[str, str]]:
    """(compute_status, app_status) from the app's wish (compute on or off) and the runner.
    `start`: "" while this server starts the app, or why starting it failed."""
    if not app.get("compute_on"):
        return ({"state": "STOPPED", "message": "App compute is stopped."},
                {"state": "UNAVAILABLE", "message": "App is not running."})
    compute, state, message = runner_status
    if app.get("active_deployment") and compute == "STOPPED" and start is not None:
        if start:
            return ({"state": "ERROR", "message": start}, {"state": "UNAVAILABLE", "message": start})
        return ({"state": "STARTING", "message": "App compute is starting."},
                {"state": "DEPLOYING", "message": "App is starting."})
    if app.get("active_deployment") is None:
        if deploying:
            return ({"state": "ACTIVE", "message": "App compute is running."},
                    {"state": "DEPLOYING", "message": "App is being deployed."})
        if compute == "STOPPED":     # the runner has no process: nothing was deployed yet
            return ({"state": "ACTIVE", "message": "App compute is running."},
                    {"state": "UNAVAILABLE", "message": message if "failed" in message else NOT_DEPLOYED})
    compute_msg = {"ACTIVE": "App compute is running.", "STARTING": "App compute is starting.",
                   "STOPPED": "App compute is stopped.", "STOPPING": "App compute is stopping.",
                   "ERROR": message}.get(compute, message)
    return {"state": compute, "message": compute_msg}, {"state": state, "message": message}
