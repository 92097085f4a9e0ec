"""The per-endpoint OpenAPI 3.1 document: one invocations path per served model, with the
request schema derived from the model signature when the model is cached on this machine.
`signature_of` (EndpointService.model_signature) reads those files: async callers run
`endpoint_openapi` on a worker thread."""

from __future__ import annotations

from typing import Any, Callable

SignatureOf = Callable[[dict[str, Any]], list[dict[str, Any]] | None]

MLFLOW_TYPES = {
    "boolean": {"type": "boolean"}, "integer": {"type": "integer", "format": "int32"},
    "long": {"type": "integer", "format": "int64"}, "float": {"type": "number", "format": "float"},
    "double": {"type": "number", "format": "double"}, "string": {"type": "string"},
    "binary": {"type": "string", "format": "byte"}, "datetime": {"type": "string", "format": "date-time"},
}


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


def endpoint_openapi(name: str, cfg: dict[str, Any] | None, signature_of: SignatureOf) -> dict[str, Any]:
    paths: dict[str, Any] = {}
    cfg = cfg or {"served_entities": []}
    response = {"200": {"description": "Predictions", "content": {"application/json": {"schema": {
        "type": "object", "properties": {"predictions": {}}}}}},
        "400": {"description": "Invalid input"}}
    for ent in cfg["served_entities"]:
        schema = request_schema(signature_of(ent))
        op = {
            "summary": f"Query served model '{ent['name']}'",
            "requestBody": {"required": True, "content": {"application/json": {"schema": schema}}},
            "responses": response,
        }
        paths[f"/serving-endpoints/{name}/served-models/{ent['name']}/invocations"] = {"post": op}
    paths[f"/serving-endpoints/{name}/invocations"] = {"post": {
        "summary": f"Query endpoint '{name}' (traffic split across served models)",
        "requestBody": {"required": True, "content": {"application/json": {"schema": request_schema(
            signature_of(cfg["served_entities"][0]) if len(cfg["served_entities"]) == 1
            else None)}}},
        "responses": response,
    }}
    return {
        "openapi": "3.1.0",
        "info": {"title": name, "version": str(cfg.get("config_version", 1))},
        "servers": [{"url": "/"}],
        "paths": paths,
        "components": {"securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer"}}},
        "security": [{"bearerAuth": []}],
    }
