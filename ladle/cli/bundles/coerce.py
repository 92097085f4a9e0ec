"""Scalars as the server takes them: where the bundle schema wants a string, a number or a
boolean from YAML (`entity_version: 3`) becomes a string, as the Databricks CLI normalizes it."""

from __future__ import annotations

from typing import Any

from ladle.cli.bundles.schema import bundle_schema


def coerce_endpoint(item: dict[str, Any]) -> dict[str, Any]:
    """An endpoint as the server takes it: numbers and booleans where a string belongs become strings."""
    schema = bundle_schema()
    return _coerce(item, {"$ref": "#/$defs/Endpoint"}, schema["$defs"])


def _coerce(value: Any, schema: Any, defs: dict[str, Any]) -> Any:
    while isinstance(schema, dict) and "$ref" in schema:
        schema = defs.get(schema["$ref"].rsplit("/", 1)[-1], {})
    if not isinstance(schema, dict):
        return value
    if "anyOf" in schema:
        wanted = "object" if isinstance(value, dict) else "array" if isinstance(value, list) else None
        for branch in schema["anyOf"]:
            target = branch
            while isinstance(target, dict) and "$ref" in target:
                target = defs.get(target["$ref"].rsplit("/", 1)[-1], {})
            types = target.get("type") if isinstance(target, dict) else None
            if wanted is None or "anyOf" in target or types == wanted or (isinstance(types, list) and wanted in types):
                return _coerce(value, target, defs)
        return value
    if isinstance(value, dict):
        props = schema.get("properties") or {}
        extra = schema.get("additionalProperties")
        return {k: _coerce(v, props.get(k, extra if isinstance(extra, dict) else {}), defs) for k, v in value.items()}
    if isinstance(value, list):
        return [_coerce(v, schema.get("items") or {}, defs) for v in value]
    if schema.get("type") == ["string", "number", "boolean"] and not isinstance(value, str) and value is not None:
        return str(value).lower() if isinstance(value, bool) else str(value)
    return value
