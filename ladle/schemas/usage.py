"""`GET /api/2.0/ladle/usage` query and answer (ladle's own API)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from ladle.schemas.wire import Body, Out

GroupBy = Literal["endpoint", "requester", "day"]


class UsageQuery(Body):
    group_by: GroupBy = "endpoint"
    endpoint: str | None = Field(default=None, description="only this endpoint's rows")


class UsageRow(Out):
    endpoint: str | None = None
    requester: str | None = None
    day: str | None = None
    request_count: int
    error_count: int
    input_token_count: int
    output_token_count: int
    input_character_count: int
    output_character_count: int
    request_size_bytes: int
    response_size_bytes: int


class UsageResponse(Out):
    group_by: GroupBy
    rows: list[UsageRow]
