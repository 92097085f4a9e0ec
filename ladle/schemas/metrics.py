"""`GET /api/2.0/ladle/serving-endpoints/{name}/metrics-history`'s answer (ladle's own API)."""

from __future__ import annotations

from pydantic import Field

from ladle.schemas.wire import Out


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
