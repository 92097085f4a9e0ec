"""`GET /api/2.0/ladle/usage` query and answer; foundation model catalog and metrics history
answers (ladle's own API)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from ladle.schemas.llm import CHAT, COMPLETIONS, EMBEDDINGS
from ladle.schemas.wire import Body, Name, Out

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


class AddLocalModelRequest(Body):
    path: str = Field(min_length=1, max_length=4096, pattern=r"^[^\x00]+$",
                      description="an absolute path on the server's machine: a Hugging Face model directory")
    name: Name
    task: Literal[CHAT, COMPLETIONS, EMBEDDINGS]  # type: ignore[valid-type]


class FoundationModel(Out):
    name: str
    entity_name: str
    entity_version: str
    endpoint_name: str
    task: str
    model_id: str
    display_name: str
    description: str
    docs: str
    path: str | None
    source: str
    weights_present: bool


class FoundationModelsResponse(Out):
    models: list[FoundationModel]


class AddLocalModelResponse(Out):
    model: FoundationModel
    endpoints_created: list[str]


class MetricSeries(Out):
    name: str
    labels: dict[str, str]
    value: float


class MetricSample(Out):
    t: int = Field(description="epoch milliseconds")
    series: list[MetricSeries]


class MetricsHistoryResponse(Out):
    interval_s: float
    samples: list[MetricSample]
