"""Shared pieces of ladle's request and response models (the ones its own OpenAPI document,
`/api/2.0/ladle/openapi.json`, is built from).

Request bodies are parsed strictly: a JSON string is not an integer, a number is not a
boolean, so what the document says is what the server accepts. Unknown fields are ignored,
as Databricks does. Response models allow fields they do not name (the document describes
what a client can rely on)."""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, WithJsonSchema

from ladle.schemas.errors import STATUS_FOR_CODE


# PostgreSQL text cannot hold NUL: refused at the edge (a 400) rather than failing in the store.
# A name a client gives things (principals, groups, scopes...).
Name = Annotated[str, Field(min_length=1, max_length=256, pattern=r"^[^\x00]+$")]
# Free text (comments, descriptions).
Text = Annotated[str, Field(max_length=65536, pattern=r"^[^\x00]*$")]


_DECIMAL = re.compile(r"^-?[0-9]{1,19}$")   # int64 has 19 digits (SCIM ids reach them)


def _decimal_string_to_int(v: Any) -> Any:
    return int(v) if isinstance(v, str) and _DECIMAL.match(v) else v


def proto_int(ge: int | None = None, le: int | None = None) -> Any:
    """An integer field that, like protobuf's JSON mapping (and Databricks' own docs, which
    send `"traffic_percentage": "90"`), also takes the integer as a decimal string. Booleans
    and fractions are refused (in strict models). The document says both forms."""
    bounds = {k: v for k, v in (("minimum", ge), ("maximum", le)) if v is not None}
    return Annotated[int, BeforeValidator(_decimal_string_to_int), Field(ge=ge, le=le),
                     WithJsonSchema({"anyOf": [{"type": "integer", **bounds},
                                               {"type": "string", "pattern": _DECIMAL.pattern}]})]


class Body(BaseModel):
    """A request body: strict types, unknown fields ignored."""

    model_config = ConfigDict(extra="ignore", strict=True)


class Out(BaseModel):
    """A response object: more fields may be present than are named."""

    model_config = ConfigDict(extra="allow")


class Empty(Out):
    """`{}`: the call succeeded and has nothing to return."""


class ErrorDetail(Out):
    type_: str | None = Field(default=None, alias="@type")
    request_id: str | None = None


class ErrorResponse(Out):
    """Every error: Databricks' shape."""

    error_code: str = Field(examples=sorted(STATUS_FOR_CODE))
    message: str
    details: list[ErrorDetail] = Field(default_factory=list)
