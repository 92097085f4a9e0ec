"""From the loaded files to one resolved bundle for a target: variables, references, presets."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ladle.cli.bundles.diagnostics import BundleError, Diagnostic, Locations
from ladle.cli.bundles.interpolate import (
    REF, Deferred, Missing, normalize_prefix, resolve_variables, short_name, substitute, walk_path,
)
from ladle.cli.bundles.loader import Loaded, select_target

RESOURCE_TYPES = ("model_serving_endpoints", "apps")


@dataclass
class Bundle:
    name: str
    target: str
    root: Path
    user_name: str
    root_path: str  # the workspace folder of this bundle and target
    file_path: str  # where the bundle's files are uploaded
    mode: str | None
    resources: dict[str, dict[str, dict[str, Any]]]
    locs: Locations
    variables: dict[str, Any] = field(default_factory=dict)
    host: str | None = None  # workspace.host, when the bundle names one

    @property
    def state_dir(self) -> Path:
        return self.root / ".databricks" / "bundle" / self.target


def resolve(loaded: Loaded, target: str | None, user_name: str, overrides: dict[str, str],
            env: dict[str, str]) -> Bundle:
    name, merged, tsettings, locs = select_target(loaded, target)
    merged = copy.deepcopy(merged)
    problems: list[Diagnostic] = []
    bundle_section = merged.get("bundle") if isinstance(merged.get("bundle"), dict) else {}
    bundle_name = bundle_section.get("name")
    if not isinstance(bundle_name, str) or not bundle_name:
        raise BundleError([locs.diag(("bundle",), "bundle.name is required")])
    decls = merged.get("variables")
    values, var_problems = resolve_variables(decls, tsettings.get("variables"), overrides, env, locs)
    problems += var_problems
    short = short_name(user_name)
    ctx: dict[str, Any] = {
        "bundle": {**bundle_section, "name": bundle_name, "target": name},
        "workspace": {"current_user": {"userName": user_name, "user_name": user_name, "short_name": short}},
        "var": values,
        "variables": {k: {"value": v} for k, v in values.items()},
    }

    def lookup(ref: str) -> Any:
        head, *rest = ref.split(".")
        if head == "resources":
            raise Deferred(ref)
        if head not in ctx:
            raise Missing(ref)
        if head == "var" and rest and rest[0] not in values:
            if isinstance(decls, dict) and rest[0] in decls:
                raise Deferred(ref)  # declared, unassigned: reported once, at the declaration
            raise Missing(ref)
        return walk_path(ctx[head], rest)

    # variables may use other variables and bundle.* (a few passes settle chains)
    for _ in range(5):
        values.update(substitute(values, ("variables",), lookup, locs, []))
    values.update(substitute(values, ("variables",), lookup, locs, problems))  # what is still undefined
    ctx["variables"] = {k: {"value": v} for k, v in values.items()}
    workspace = substitute(merged.get("workspace") or {}, ("workspace",), lookup, locs, problems)
    home = f"/Workspace/Users/{user_name}"
    root_path = str(workspace.get("root_path") or f"~/.bundle/{bundle_name}/{name}")
    if root_path.startswith("~"):
        root_path = home + root_path[1:]
    file_path = str(workspace.get("file_path") or f"{root_path}/files")
    ctx["workspace"].update({**workspace, "root_path": root_path, "file_path": file_path,
                             "state_path": f"{root_path}/state"})
    resources = merged.get("resources") if isinstance(merged.get("resources"), dict) else {}
    resources = substitute(resources, ("resources",), lookup, locs, problems)
    top = substitute(merged.get("permissions") or [], ("permissions",), lookup, locs, problems)
    _apply_bundle_permissions(resources, top if isinstance(top, list) else [])
    mode = tsettings.get("mode")
    presets = merged.get("presets") if isinstance(merged.get("presets"), dict) else {}
    prefix = presets.get("name_prefix") or (f"[dev {short}] " if mode == "development" else "")
    for item in (resources.get("model_serving_endpoints") or {}).values():
        if prefix and isinstance(item, dict) and isinstance(item.get("name"), str):
            item["name"] = normalize_prefix(prefix) + item["name"]

    def resource_lookup(ref: str) -> Any:
        head, *rest = ref.split(".")
        if head != "resources":
            raise Missing(ref)
        found = walk_path(resources, rest)
        if isinstance(found, str) and REF.search(found):
            raise Deferred(ref)
        return found

    for _ in range(10):
        before = repr(resources)
        resources = substitute(resources, ("resources",), resource_lookup, locs, problems)
        if repr(resources) == before:
            break
    _unresolved(resources, ("resources",), locs, problems)
    for rtype in RESOURCE_TYPES:
        for key, item in (resources.get(rtype) or {}).items():
            if not isinstance(item, dict) or not item.get("name"):
                problems.append(locs.diag(("resources", rtype, key), "missing required field: name"))
    if problems:
        raise BundleError(_unique(problems))
    return Bundle(bundle_name, name, loaded.root, user_name, root_path, file_path, mode,
                  {t: dict(resources.get(t) or {}) for t in RESOURCE_TYPES}, locs, values,
                  str(workspace["host"]) if workspace.get("host") else None)


# Top-level permissions, as each resource type names them (the Databricks CLI's mapping)
BUNDLE_LEVELS = {
    "model_serving_endpoints": {"CAN_MANAGE": "CAN_MANAGE", "CAN_VIEW": "CAN_VIEW", "CAN_RUN": "CAN_QUERY"},
    "apps": {"CAN_MANAGE": "CAN_MANAGE", "CAN_VIEW": "CAN_USE"},
}
PRINCIPALS = ("user_name", "group_name", "service_principal_name")


def _apply_bundle_permissions(resources: dict[str, Any], top: list[Any]) -> None:
    """Add the bundle's `permissions` to each resource, unless it names that principal itself."""
    for rtype, levels in BUNDLE_LEVELS.items():
        for item in (resources.get(rtype) or {}).values():
            if not isinstance(item, dict):
                continue
            own = item.get("permissions") if isinstance(item.get("permissions"), list) else []
            named = {(k, p.get(k)) for p in own if isinstance(p, dict) for k in PRINCIPALS if p.get(k)}
            added = []
            for p in top:
                who = next(((k, p.get(k)) for k in PRINCIPALS if isinstance(p, dict) and p.get(k)), None)
                level = levels.get(p.get("level")) if isinstance(p, dict) else None
                if who and level and who not in named:
                    added.append({"level": level, who[0]: who[1]})
            if added:
                item["permissions"] = own + added


def _unresolved(value: Any, path: tuple, locs: Locations, problems: list[Diagnostic]) -> None:
    if isinstance(value, dict):
        for k, v in value.items():
            _unresolved(v, (*path, k), locs, problems)
    elif isinstance(value, list):
        for i, v in enumerate(value):
            _unresolved(v, (*path, i), locs, problems)
    elif isinstance(value, str):
        for m in REF.finditer(value):
            if m.group(1).startswith("resources."):
                problems.append(locs.diag(path, f"cannot resolve ${{{m.group(1)}}} (a reference cycle?)"))


def _unique(problems: list[Diagnostic]) -> list[Diagnostic]:
    seen: set[str] = set()
    out = []
    for p in problems:
        if str(p) not in seen:
            seen.add(str(p))
            out.append(p)
    return out
