"""The model's own spans, sent back by the replica (ladle/replica/tracing.py), rebuilt as
OpenTelemetry spans and exported with the gateway's: to the OTLP collector and to the
endpoint's MLflow experiment, through the same bounded queues (telemetry/otel_export.py).

Only spans of the request's own trace are taken (a model cannot write into other traces), at
most MAX_SPANS per request; a payload that does not parse is dropped and counted as dropped.
"""

from __future__ import annotations

import json
import logging
from typing import Any, Iterable

from ladle.telemetry.otel_export import EXPERIMENT

log = logging.getLogger("ladle.otel")

MAX_SPANS = 1000
_RESOURCE: Any = None


def rebuild(payloads: Iterable[bytes], trace_id: int, experiment: str | None) -> tuple[list[Any], int]:
    """ReadableSpans from SPANS payloads, and how many spans were refused."""
    from opentelemetry.sdk.trace import Event, ReadableSpan
    from opentelemetry.sdk.util.instrumentation import InstrumentationScope
    from opentelemetry.trace import SpanContext, SpanKind, Status, StatusCode, TraceFlags

    out: list[Any] = []
    refused = 0
    scope = InstrumentationScope("ladle.replica")
    for payload in payloads:
        try:
            items = json.loads(payload)
        except ValueError:
            refused += 1
            continue
        for d in items if isinstance(items, list) else ():
            try:
                if int(d["trace_id"], 16) != trace_id or len(out) >= MAX_SPANS:
                    refused += 1
                    continue
                ctx = SpanContext(trace_id, int(d["span_id"], 16), is_remote=False,
                                  trace_flags=TraceFlags(TraceFlags.SAMPLED))
                parent = (SpanContext(trace_id, int(d["parent_id"], 16), is_remote=False,
                                      trace_flags=TraceFlags(TraceFlags.SAMPLED))
                          if d.get("parent_id") else None)
                attrs = dict(d.get("attributes") or {})
                if experiment:
                    attrs[EXPERIMENT] = experiment
                code, description = d.get("status") or (0, None)
                out.append(ReadableSpan(
                    name=str(d["name"]), context=ctx, parent=parent, resource=_resource(),
                    attributes=attrs, kind=SpanKind(int(d.get("kind") or 0)),
                    status=Status(StatusCode(int(code)), description if int(code) == 2 else None),
                    start_time=int(d["start"]), end_time=int(d["end"]),
                    events=[Event(str(e["name"]), e.get("attributes") or {}, int(e["time"]))
                            for e in d.get("events") or ()],
                    instrumentation_scope=scope))
            except (KeyError, TypeError, ValueError):
                refused += 1
    return out, refused


def _resource() -> Any:
    global _RESOURCE
    if _RESOURCE is None:
        from opentelemetry.sdk.resources import Resource

        _RESOURCE = Resource.create({"service.name": "ladle.replica"})
    return _RESOURCE
