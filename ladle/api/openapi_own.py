"""ladle's own API as an OpenAPI 3.1 document, served at `GET /api/2.0/ladle/openapi.json`.

One table (`ladle.api.api_table.OPERATIONS`) lists every operation of the control plane,
tokens, secrets, groups, permissions, usage and catalog: method, path, the pydantic models
its handler validates the body (or query) with and answers with, and the error statuses it
can answer. The document is built from that table and the models' `model_json_schema()`,
once, on the first request. (Not the per-endpoint invocations document Databricks serves at
`/api/2.0/serving-endpoints/{name}/openapi`: that one is `ladle.api.openapi_doc`.)
"""

from __future__ import annotations

import functools
import re
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ladle.api.api_table import ALWAYS, OPERATIONS, Op
from ladle.schemas.wire import ErrorResponse

PATH = "/api/2.0/ladle/openapi.json"
REF = "#/components/schemas/{model}"
STATUS_TEXT = {400: "The request is invalid (the message names the field); nothing changed",
               401: "No valid token", 403: "The caller may not do this", 404: "No such object",
               409: "Conflicts with the current state (exists already, or changed meanwhile)",
               501: "Not supported by this server",
               503: "ladle's database cannot be reached; nothing changed, retry"}


def _models(ops: tuple[Op, ...]) -> list[tuple[type[BaseModel], str]]:
    seen: dict[tuple[type[BaseModel], str], None] = {(ErrorResponse, "serialization"): None}
    for op in ops:
        if op.body is not None:
            seen[(op.body, "validation")] = None
        if op.query is not None:
            seen[(op.query, "validation")] = None
        if isinstance(op.answer, type):
            seen[(op.answer, "serialization")] = None
    return list(seen)


def _query_parameters(schema: dict[str, Any]) -> list[dict[str, Any]]:
    required = set(schema.get("required", ()))
    return [{"name": name, "in": "query", "required": name in required, "schema": prop}
            for name, prop in schema.get("properties", {}).items()]


def _operation(op: Op, refs: dict[tuple[type[BaseModel], str], dict[str, Any]],
               defs: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"operationId": op.operation_id, "summary": op.summary, "tags": [op.tag]}
    params = [{"name": p, "in": "path", "required": True, "schema": {"type": "string", "minLength": 1}}
              for p in re.findall(r"{(\w+)}", op.path)]
    if op.query is not None:
        params += _query_parameters(defs[refs[(op.query, "validation")]["$ref"].rsplit("/", 1)[-1]])
    if params:
        out["parameters"] = params
    if op.body is not None:
        # No body is the empty object (ladle.api.bodies.json_body): required only when the
        # model has a required field.
        body = refs[(op.body, "validation")]
        required = bool(defs[body["$ref"].rsplit("/", 1)[-1]].get("required"))
        out["requestBody"] = {"required": required, "content": {"application/json": {"schema": body}}}
    if isinstance(op.answer, type):
        ok = {"application/json": {"schema": refs[(op.answer, "serialization")]}}
    else:
        ok = {op.answer: {"schema": {"type": "string"}}}
    responses: dict[str, Any] = {"200": {"description": op.answer_text, "content": ok}}
    error = {"application/json": {"schema": refs[(ErrorResponse, "serialization")]}}
    statuses = set(op.errors) | set(ALWAYS) | ({400} if op.body is not None or op.query is not None else set())
    for status in sorted(statuses):
        responses[str(status)] = {"description": STATUS_TEXT[status], "content": error}
    out["responses"] = responses
    return out


@functools.cache
def own_openapi(ops: tuple[Op, ...] = OPERATIONS) -> dict[str, Any]:
    refs, top = models_json_schema(_models(ops), ref_template=REF)
    defs = top.get("$defs", {})
    paths: dict[str, dict[str, Any]] = {}
    for op in ops:
        paths.setdefault(op.path, {})[op.method.lower()] = _operation(op, refs, defs)
    return {
        "openapi": "3.1.0",
        "info": {"title": "ladle", "version": "2.0",
                 "description": "ladle's own API: the serving-endpoints control plane, permissions, "
                                "tokens, secrets, groups, usage and the foundation model catalog. "
                                "Every error answers {error_code, message, details}."},
        "servers": [{"url": "/"}],
        "security": [{"bearer": []}],
        "paths": paths,
        "components": {"schemas": defs,
                       "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer",
                                                      "description": "a ladle token"}}},
    }


def routes() -> list[Route]:
    async def document(request: Request) -> Response:
        return JSONResponse(own_openapi())

    return [Route(PATH, document, methods=["GET"])]
