"""The per-endpoint OpenAPI 3.1 document: one invocations path per served model, with the
request schema derived from the model signature (MLmodel) when the model is local.
`endpoint_openapi` reads those files: async callers run it on a worker thread."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from ladle.control.store import EndpointRecord
from ladle.entities.prepare import model_dir

MLFLOW_TYPES = {
    "boolean": {"type": "boolean"}, "integer": {"type": "integer", "format": "int32"},
    "long": {"type": "integer", "format": "int64"}, "float": {"type": "number", "format": "float"},
    "double": {"type": "number", "format": "double"}, "string": {"type": "string"},
    "binary": {"type": "string", "format": "byte"}, "datetime": {"type": "string", "format": "date-time"},
}


def _signature_inputs(models_dir: Path, entity: dict[str, Any]) -> list[dict[str, Any]] | None:
    if not entity.get("entity_name"):
        return None
    path = model_dir(models_dir, entity["entity_name"], str(entity.get("entity_version"))) / "MLmodel"
    if not path.exists():
        return None
    doc = yaml.safe_load(path.read_text()) or {}
    sig = (doc.get("signature") or {}).get("inputs")
    return json.loads(sig) if sig else None


def _column_schema(col: dict[str, Any]) -> dict[str, Any]:
    if col.get("type") == "tensor":
        return {"type": "array", "items": MLFLOW_TYPES.get(col.get("tensor-spec", {}).get("dtype", ""), {})}
    return dict(MLFLOW_TYPES.get(col.get("type", ""), {}))


def request_schema(inputs: list[dict[str, Any]] | None) -> dict[str, Any]:
    if not inputs:
        generic = {"type": "object", "description": "Any MLflow scoring input"}
        return {"type": "object", "properties": {k: generic for k in (
            "dataframe_split", "dataframe_records", "instances", "inputs")} | {"params": {"type": "object"}}}
    named = [c for c in inputs if c.get("name")]
    props = {c["name"]: _column_schema(c) for c in named}
    required = [c["name"] for c in named if c.get("required", True)]
    record = {"type": "object", "properties": props, "required": required}
    return {
        "type": "object",
        "description": "Exactly one of dataframe_split, dataframe_records, instances or inputs",
        "properties": {
            "dataframe_split": {
                "type": "object",
                "properties": {
                    "columns": {"type": "array", "items": {"type": "string", "enum": list(props)}},
                    "data": {"type": "array", "items": {"type": "array"}},
                },
                "required": ["data"],
            },
            "dataframe_records": {"type": "array", "items": record},
            "instances": {"type": "array", "items": record},
            "inputs": {"oneOf": [record, {"type": "array", "items": record}]},
            "params": {"type": "object"},
        },
    }


def endpoint_openapi(rec: EndpointRecord, models_dir: Path) -> dict[str, Any]:
    paths: dict[str, Any] = {}
    cfg = rec.active or rec.pending or {"served_entities": []}
    response = {"200": {"description": "Predictions", "content": {"application/json": {"schema": {
        "type": "object", "properties": {"predictions": {}}}}}},
        "400": {"description": "Invalid input"}}
    for ent in cfg["served_entities"]:
        schema = request_schema(_signature_inputs(models_dir, ent))
        op = {
            "summary": f"Query served model '{ent['name']}'",
            "requestBody": {"required": True, "content": {"application/json": {"schema": schema}}},
            "responses": response,
        }
        paths[f"/serving-endpoints/{rec.name}/served-models/{ent['name']}/invocations"] = {"post": op}
    paths[f"/serving-endpoints/{rec.name}/invocations"] = {"post": {
        "summary": f"Query endpoint '{rec.name}' (traffic split across served models)",
        "requestBody": {"required": True, "content": {"application/json": {"schema": request_schema(
            _signature_inputs(models_dir, cfg["served_entities"][0]) if len(cfg["served_entities"]) == 1
            else None)}}},
        "responses": response,
    }}
    return {
        "openapi": "3.1.0",
        "info": {"title": rec.name, "version": str(cfg.get("config_version", 1))},
        "servers": [{"url": "/"}],
        "paths": paths,
        "components": {"securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer"}}},
        "security": [{"bearerAuth": []}],
    }
