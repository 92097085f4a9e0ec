"""Unity Catalog's read shapes for registered models and their versions
(`/api/2.1/unity-catalog/models...`), as the Databricks SDK and CLI read them."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BeforeValidator, Field

from ladle.schemas.wire import Body, Out, proto_int


def _query_bool(v: Any) -> Any:
    """A query string's `true`/`false` (any case) as a boolean."""
    return {"true": True, "false": False}.get(v.lower(), v) if isinstance(v, str) else v


QueryBool = Annotated[bool, BeforeValidator(_query_bool)]

# A catalog's or schema's name: letters, digits, '_' and '-' (Unity Catalog identifiers).
IDENT = r"^[A-Za-z0-9_-]{1,255}$"


class ListModelsQuery(Body):
    catalog_name: str | None = Field(default=None, pattern=IDENT)
    schema_name: str | None = Field(default=None, pattern=IDENT)
    max_results: proto_int(ge=0) | None = None  # type: ignore[valid-type]
    page_token: str | None = None
    include_browse: QueryBool | None = None


class ListVersionsQuery(Body):
    max_results: proto_int(ge=0) | None = None  # type: ignore[valid-type]
    page_token: str | None = None
    include_browse: QueryBool | None = None


class GetModelQuery(Body):
    include_aliases: QueryBool | None = None
    include_browse: QueryBool | None = None


class RegisteredModelAlias(Out):
    alias_name: str
    version_num: int
    catalog_name: str | None = None
    schema_name: str | None = None
    model_name: str | None = None


class RegisteredModelInfo(Out):
    full_name: str
    name: str
    catalog_name: str | None = None
    schema_name: str | None = None
    comment: str | None = None
    owner: str | None = None
    created_at: int | None = None
    created_by: str | None = None
    updated_at: int | None = None
    aliases: list[RegisteredModelAlias] | None = None


class ListRegisteredModelsResponse(Out):
    registered_models: list[RegisteredModelInfo]
    next_page_token: str | None = None


class ModelVersionInfo(Out):
    model_name: str
    version: int
    catalog_name: str | None = None
    schema_name: str | None = None
    comment: str | None = None
    source: str | None = None
    run_id: str | None = None
    status: str | None = None
    created_at: int | None = None
    created_by: str | None = None
    updated_at: int | None = None
    aliases: list[RegisteredModelAlias] | None = None


class ListModelVersionsResponse(Out):
    model_versions: list[ModelVersionInfo]
    next_page_token: str | None = None
