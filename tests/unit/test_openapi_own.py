"""ladle's own OpenAPI document (ladle.api.openapi_own), built from the route table
(ladle.api.api_table): a valid OpenAPI 3.1 document whose every reference resolves, whose
every operation documents the error shape, and whose list of operations is snapshotted so a
change to the API surface is seen in review.

Set LADLE_UPDATE_SNAPSHOTS=1 to (re)write tests/unit/snapshots/own_api_operations.txt.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Iterator

import pytest

from ladle.api.api_table import OPERATIONS
from ladle.api.openapi_own import own_openapi

SNAPSHOT = Path(__file__).parent / "snapshots" / "own_api_operations.txt"


def _refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for k, v in node.items():
            if k == "$ref":
                yield v
            else:
                yield from _refs(v)
    elif isinstance(node, list):
        for v in node:
            yield from _refs(v)


def _lines(doc: dict[str, Any]) -> list[str]:
    out = []
    for path, methods in doc["paths"].items():
        for method, op in methods.items():
            body = "-"
            if "requestBody" in op:
                ref = op["requestBody"]["content"]["application/json"]["schema"]["$ref"]
                body = ref.rsplit("/", 1)[-1] + ("" if op["requestBody"]["required"] else " (optional)")
            ok = op["responses"]["200"]["content"]
            media = next(iter(ok))
            answer = ok[media]["schema"]["$ref"].rsplit("/", 1)[-1] if media == "application/json" else media
            query = ",".join(p["name"] for p in op.get("parameters", []) if p["in"] == "query")
            out.append(f"{method.upper():6} {path} body={body} query={query or '-'} answer={answer} "
                       f"errors={','.join(sorted(op['responses'])[1:])}")
    return sorted(out)


def test_document_is_valid_openapi_31() -> None:
    schemathesis = pytest.importorskip("schemathesis")
    doc = own_openapi()
    assert doc["openapi"] == "3.1.0"
    schema = schemathesis.openapi.from_dict(json.loads(json.dumps(doc)))   # validates the document
    operations = [r.ok() for r in schema.get_all_operations()]             # raises on a broken operation
    assert len(operations) == len(OPERATIONS)
    assert len({op.operation_id for op in OPERATIONS}) == len(OPERATIONS)


def test_every_reference_resolves_and_every_error_has_the_error_shape() -> None:
    doc = own_openapi()
    schemas = doc["components"]["schemas"]
    missing = {r for r in _refs(doc) if r.rsplit("/", 1)[-1] not in schemas}
    assert not missing
    err = schemas["ErrorResponse"]
    assert set(err["required"]) == {"error_code", "message"}
    for path, methods in doc["paths"].items():
        for method, op in methods.items():
            codes = set(op["responses"])
            assert {"200", "401", "503"} <= codes, (method, path)
            if "requestBody" in op or any(p["in"] == "query" for p in op.get("parameters", [])):
                assert "400" in codes, (method, path)
            for code, resp in op["responses"].items():
                if code != "200":
                    assert resp["content"]["application/json"]["schema"]["$ref"].endswith("/ErrorResponse")


def test_request_bodies_name_their_fields_and_types() -> None:
    schemas = own_openapi()["components"]["schemas"]
    token = schemas["CreateTokenRequest"]["properties"]
    # an integer, or the integer as a decimal string (protobuf's JSON mapping), never a boolean
    branches = token["lifetime_seconds"]["anyOf"]
    assert {"type": "integer", "minimum": 0, "maximum": 10_000_000_000} in branches
    assert {"type": "string", "pattern": "^-?[0-9]{1,19}$"} in branches
    acl = schemas["AccessControlRequest"]
    assert acl["required"] == ["permission_level"]
    assert acl["properties"]["permission_level"]["enum"] == ["CAN_VIEW", "CAN_QUERY", "CAN_MANAGE"]


def test_operations_snapshot() -> None:
    text = "\n".join(_lines(own_openapi())) + "\n"
    if os.environ.get("LADLE_UPDATE_SNAPSHOTS") == "1":
        SNAPSHOT.write_text(text)
    assert text == SNAPSHOT.read_text(), "the API surface changed: review, then LADLE_UPDATE_SNAPSHOTS=1"
