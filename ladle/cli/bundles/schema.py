"""The JSON schema a bundle file is checked against, and its errors as `file:line: field: message`.

ladle builds the schema of what it deploys: the serving-endpoint part is generated from the
server's own request models (ladle.schemas.endpoints), so the CLI and the server agree on every
field; apps, permissions, targets and variables are written out below. Every object refuses
unknown keys (a typo is named, with the closest known key), and every non-string value may also
be a `${...}` reference, as in the Databricks CLI's published schema. That schema itself is not
shipped with ladle (its licence allows its use only with Databricks services); a user who has it
(`databricks bundle schema > schema.json`) names the file in LADLE_BUNDLE_SCHEMA and each file
is checked against it too.
"""

from __future__ import annotations

import copy
import difflib
import functools
import json
import os
from pathlib import Path
from typing import Any

from ladle.cli.bundles.diagnostics import Diagnostic, Locations, Path_

SCHEMA_ENV = "LADLE_BUNDLE_SCHEMA"
INTERPOLATION = {"type": "string", "pattern": r"\$\{[^}]+\}"}
DATABRICKS_ONLY = ("jobs", "pipelines", "experiments", "models", "registered_models", "quality_monitors",
                   "schemas", "volumes", "clusters", "dashboards", "secret_scopes", "sql_warehouses",
                   "database_instances", "database_catalogs", "synced_database_tables", "alerts", "catalogs")


def _perm(levels: list[str]) -> dict[str, Any]:
    return {"type": "object", "required": ["level"],
            "properties": {"level": {"enum": levels}, "user_name": {"type": "string"},
                           "group_name": {"type": "string"}, "service_principal_name": {"type": "string"}}}


_STR = {"type": "string"}
_STRS = {"type": "array", "items": _STR}
_ANY_MAP = {"type": "object", "additionalProperties": True}
_SERVING_LEVELS = ["CAN_MANAGE", "CAN_QUERY", "CAN_VIEW"]
_APP_RESOURCE = {
    "type": "object", "required": ["name"],
    "properties": {
        "name": _STR, "description": _STR,
        "serving_endpoint": {"type": "object", "required": ["name", "permission"],
                             "properties": {"name": _STR, "permission": {"enum": _SERVING_LEVELS}}},
        "secret": {"type": "object", "required": ["scope", "key", "permission"],
                   "properties": {"scope": _STR, "key": _STR, "permission": {"enum": ["READ", "WRITE", "MANAGE"]}}},
        "sql_warehouse": _ANY_MAP, "job": _ANY_MAP, "uc_securable": _ANY_MAP, "database": _ANY_MAP,
        "genie_space": _ANY_MAP, "experiment": _ANY_MAP,
    },
}
_APP = {
    "type": "object", "required": ["name"],
    "properties": {
        "name": _STR, "description": _STR, "source_code_path": _STR,
        "config": {"type": "object", "properties": {
            "command": _STRS,
            "env": {"type": "array", "items": {"type": "object", "required": ["name"], "properties": {
                "name": _STR, "value": _STR, "value_from": _STR, "valueFrom": _STR}}}}},
        "resources": {"type": "array", "items": _APP_RESOURCE},
        "permissions": {"type": "array", "items": _perm(["CAN_MANAGE", "CAN_USE"])},
        "user_api_scopes": _STRS, "budget_policy_id": _STR, "compute_size": _STR, "lifecycle": _ANY_MAP,
    },
}
_VARIABLE = {"type": "object", "properties": {
    "default": {}, "description": _STR, "type": {"enum": ["complex"]}, "lookup": _ANY_MAP}}


def _section(endpoint: dict[str, Any], top: bool) -> dict[str, Any]:
    resources = {"type": "object", "properties": {
        "model_serving_endpoints": {"type": "object", "additionalProperties": endpoint},
        "apps": {"type": "object", "additionalProperties": _APP}}}
    props: dict[str, Any] = {
        "bundle": {"type": "object", "properties": {
            "name": _STR, "uuid": _STR, "databricks_cli_version": _STR, "git": _ANY_MAP, "deployment": _ANY_MAP,
            "cluster_id": _STR, "compute_id": _STR, "engine": _STR}},
        "workspace": {"type": "object", "additionalProperties": True, "properties": {
            "host": _STR, "profile": _STR, "root_path": _STR, "file_path": _STR, "state_path": _STR}},
        "resources": resources,
        "permissions": {"type": "array", "items": _perm(["CAN_MANAGE", "CAN_VIEW", "CAN_RUN"])},
        "presets": {"type": "object", "additionalProperties": True, "properties": {"name_prefix": _STR}},
        "sync": _ANY_MAP, "artifacts": _ANY_MAP, "run_as": _ANY_MAP, "experimental": _ANY_MAP,
    }
    if top:
        props["include"] = _STRS
        props["variables"] = {"type": "object", "additionalProperties": _VARIABLE}
    else:
        props.update({"default": {"type": "boolean"}, "mode": {"enum": ["development", "production"]},
                      "variables": {"type": "object"}, "git": _ANY_MAP, "cluster_id": _STR, "compute_id": _STR})
    return {"type": "object", "properties": props}


@functools.cache
def bundle_schema() -> dict[str, Any]:
    """The schema of one bundle file (built on first use, then cached)."""
    from ladle.schemas.endpoints import CreateEndpointRequest

    endpoint = CreateEndpointRequest.model_json_schema(ref_template="#/$defs/{model}")
    defs = endpoint.pop("$defs", {})
    endpoint["properties"]["permissions"] = {"type": "array", "items": _perm(_SERVING_LEVELS)}
    endpoint["properties"]["lifecycle"] = _ANY_MAP
    endpoint["required"] = ["name"]
    root = _section({"$ref": "#/$defs/Endpoint"}, top=True)
    root["properties"]["targets"] = {"type": "object", "additionalProperties": {  # `prod:` alone is a target
        "anyOf": [{"$ref": "#/$defs/Target"}, {"type": "null"}]}}
    shared = {**defs, "Endpoint": endpoint}
    # a target overrides parts of what is declared elsewhere: nothing is required in it
    optional = {f"Opt{name}": _optional(d) for name, d in shared.items()}
    root["$defs"] = {**shared, **optional, "Target": _optional(_section({"$ref": "#/$defs/Endpoint"}, top=False))}
    return _tolerant(_strict(copy.deepcopy(root)))["anyOf"][0]  # the file itself is a mapping


def _optional(node: Any) -> Any:
    """A copy with no `required` lists, its references pointing at the optional copies."""
    if isinstance(node, list):
        return [_optional(v) for v in node]
    if not isinstance(node, dict):
        return node
    out = {}
    for key, value in node.items():
        if key == "required" and isinstance(value, list):
            continue
        if key == "$ref" and isinstance(value, str) and value.startswith("#/$defs/"):
            out[key] = "#/$defs/Opt" + value[len("#/$defs/"):]
        elif key == "properties" and isinstance(value, dict):
            out[key] = {k: _optional(v) for k, v in value.items()}
        else:
            out[key] = _optional(value)
    return out


def _strict(node: Any) -> Any:
    if isinstance(node, dict):
        if "properties" in node and "additionalProperties" not in node:
            node["additionalProperties"] = False
        for value in node.values():
            _strict(value)
    elif isinstance(node, list):
        for value in node:
            _strict(value)
    return node


def _tolerant(node: Any) -> Any:
    """Let every non-string value be a `${...}` reference too."""
    if isinstance(node, list):
        return [_tolerant(v) for v in node]
    if not isinstance(node, dict):
        return node
    out = {k: (v if k in ("properties", "$defs", "required", "enum", "const") else _tolerant(v))
           for k, v in node.items()}
    for key in ("properties", "$defs"):
        if key in node:
            out[key] = {k: _tolerant(v) for k, v in node[key].items()}
    if isinstance(out.get("additionalProperties"), dict):
        out["additionalProperties"] = _tolerant(node["additionalProperties"])
    plain_string = out.get("type") == "string" and not ({"enum", "const", "pattern"} & set(out))
    if plain_string:  # `entity_version: 2` is a string to the Databricks CLI too (coerce() converts it)
        return {**out, "type": ["string", "number", "boolean"]}
    if "type" in out or "enum" in out or "const" in out:
        return {"anyOf": [out, INTERPOLATION]}
    return out


@functools.cache
def _external_schema(path: str) -> dict[str, Any]:
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        import click

        raise click.ClickException(f"{SCHEMA_ENV}={path}: cannot read the schema: {exc}") from None


def check_document(data: dict[str, Any], locs: Locations) -> list[Diagnostic]:
    """Each schema problem of one file, with its line (ladle's schema, then the user's own)."""
    import jsonschema

    schemas = [bundle_schema()]
    if os.environ.get(SCHEMA_ENV):
        schemas.append(_external_schema(os.environ[SCHEMA_ENV]))
    problems: list[Diagnostic] = []
    seen: set[tuple[Any, ...]] = set()
    for schema in schemas:
        cls = jsonschema.validators.validator_for(schema, jsonschema.Draft202012Validator)
        validator = jsonschema.validators.extend(cls, {"pattern": _pattern})(schema)
        for error in validator.iter_errors(data):
            for e in _expand(error):
                for d in _diagnostics(e, locs):
                    if (d.path, d.loc) not in seen:  # one problem per field, ladle's wording first
                        seen.add((d.path, d.loc))
                        problems.append(d)
    problems.sort(key=lambda d: (d.loc.file if d.loc else "", d.loc.line if d.loc else 0, str(d)))
    return problems


def _pattern(validator: Any, pattern: str, instance: Any, schema: Any) -> Any:
    """`pattern` with the `regex` library, which reads the Unicode classes (`\\p{L}`) of the Go
    expressions in the Databricks schema (hand-written: jsonschema's own uses `re`)."""
    import regex

    from jsonschema.exceptions import ValidationError

    if not validator.is_type(instance, "string"):
        return
    found = regex.search(pattern, instance)
    if not found:
        yield ValidationError(f"{instance!r} does not match {pattern!r}")


def _expand(error: Any) -> list[Any]:
    """An `anyOf` failure as the errors of the branch the value was meant for (hand-written:
    jsonschema's best_match keeps one error and often picks the `${...}` branch)."""
    if error.validator not in ("anyOf", "oneOf") or not error.context:
        return [error]
    branches: dict[int, list[Any]] = {}
    for sub in error.context:
        branches.setdefault(sub.relative_schema_path[0], []).append(sub)
    here = list(error.absolute_path)
    best: list[Any] | None = None
    for index in sorted(branches):
        expanded = [e for sub in branches[index] for e in _expand(sub)]
        mismatch = any(list(e.absolute_path) == here and (e.validator == "type" or e.schema == INTERPOLATION)
                       for e in expanded)
        if not mismatch:
            return expanded
        if best is None:
            best = expanded
    return best or [error]


def _diagnostics(error: Any, locs: Locations) -> list[Diagnostic]:
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        known = set((error.schema.get("properties") or {}))
        return [_unknown(tuple(error.absolute_path), key, known, locs) for key in error.instance if key not in known]
    return [_diagnostic(error, locs)]


def _unknown(parent: Path_, key: str, known: set[str], locs: Locations) -> Diagnostic:
    path = (*parent, key)
    in_resources = parent == ("resources",) or (len(parent) == 3 and parent[0] == "targets" and parent[2] == "resources")
    if in_resources and key in DATABRICKS_ONLY:
        return locs.diag(path, f"resource type {key} is not supported by ladle (model_serving_endpoints and apps are)")
    near = difflib.get_close_matches(key, sorted(known), n=1)
    hint = f" (did you mean {near[0]}?)" if near else ""
    return locs.diag(path, f"unknown field {key}{hint}")


def _diagnostic(error: Any, locs: Locations) -> Diagnostic:
    path: Path_ = tuple(error.absolute_path)
    if error.validator == "required":
        return locs.diag(path, f"missing required field: {error.message.split(chr(39))[1]}")
    if error.validator == "enum":
        allowed = ", ".join(str(v) for v in error.validator_value)
        return locs.diag(path, f"{error.instance!r} is not one of: {allowed}")
    return locs.diag(path, error.message)
