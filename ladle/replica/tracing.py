"""The model's own MLflow Tracing spans, collected in the replica and handed to the gateway.

When the gateway traces a request it sends the W3C `traceparent` of its `replica` span in the
request's meta. The worker then runs the model's predict under that context (MLflow's
distributed-tracing context manager): spans the model opens with `@mlflow.trace` or
`mlflow.start_span` become children of ladle's replica span. A span processor added to MLflow's
tracer provider keeps the ended spans of the traces ladle asked for, and the worker sends them
back as one SPANS frame before the END of the answer (ladle/replica/protocol.py). The replica
needs no credentials and no network: the gateway exports them with its own spans.

A request without a `traceparent` (or one not sampled) takes none of this path: nothing is
imported and no context is entered. Stdlib only at import time; MLflow and OpenTelemetry are
imported on the first traced request (a model that uses MLflow Tracing has both).
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from typing import Any

MAX_SPANS = 1000            # per request: a model that opens more sends only the first ones


def sampled(traceparent: str | None) -> bool:
    """A W3C traceparent whose flags ask for the trace to be recorded."""
    if not traceparent:
        return False
    parts = traceparent.split("-")
    try:
        return len(parts) == 4 and len(parts[1]) == 32 and bool(int(parts[3], 16) & 1)
    except ValueError:
        return False


class Collector:
    """An OpenTelemetry SpanProcessor (duck-typed: this module imports without the SDK) keeping
    the ended spans of the traces being collected, by OpenTelemetry trace id."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_trace: dict[int, list[Any]] = {}
        self._watchers: dict[int, int] = {}

    def watch(self, trace_id: int) -> None:
        with self._lock:
            self._watchers[trace_id] = self._watchers.get(trace_id, 0) + 1
            self._by_trace.setdefault(trace_id, [])

    def take(self, trace_id: int) -> list[Any]:
        """The spans collected for `trace_id` so far, and stop watching it (for this caller)."""
        with self._lock:
            spans = self._by_trace.get(trace_id, [])
            n = self._watchers.get(trace_id, 0) - 1
            if n <= 0:
                self._watchers.pop(trace_id, None)
                self._by_trace.pop(trace_id, None)
            else:
                self._watchers[trace_id] = n
                self._by_trace[trace_id] = []
            return spans

    def on_start(self, span: Any, parent_context: Any = None) -> None:
        pass

    def _on_ending(self, span: Any) -> None:
        pass

    def on_end(self, span: Any) -> None:
        with self._lock:
            spans = self._by_trace.get(span.context.trace_id)
            if spans is not None and len(spans) < MAX_SPANS:
                spans.append(span)

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


_collector = Collector()
_install_lock = threading.Lock()


class _Keep:
    """MLflow's span processor's exporter in a replica: nothing leaves the process (the gateway
    exports what the collector keeps). A finished trace is taken out of MLflow's in-memory
    trace manager, as MLflow's own exporter does."""

    def export(self, spans: Any) -> Any:
        from opentelemetry.sdk.trace.export import SpanExportResult

        from ladle.entities.mlflow_adapter import drop_finished_trace

        for sp in spans:
            if sp.parent is None:
                drop_finished_trace(sp.context.trace_id)
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


def prepare() -> None:
    """At model load: MLflow Tracing in this replica keeps its spans in memory instead of
    writing them to a tracking store (the replica has none: MLflow would create a local database
    and write every span to it), unless the served entity names its own MLFLOW_TRACKING_URI.
    Does nothing when MLflow is not installed or has set up tracing already."""
    if os.environ.get("MLFLOW_TRACKING_URI"):
        return
    from ladle.entities.mlflow_adapter import tracing_keep_in_memory

    tracing_keep_in_memory(_Keep())


def _installed() -> bool:
    """Add the collector to MLflow's tracer provider (again if the model reset it, e.g. with
    `mlflow.tracing.set_destination`). False when MLflow Tracing is not available here."""
    from ladle.entities.mlflow_adapter import tracer_provider

    with _install_lock:
        tp = tracer_provider()
        if tp is None:
            return False
        if getattr(tp, "_ladle_collector", None) is not _collector:
            add = getattr(tp, "add_span_processor", None)
            if add is None:             # tracing disabled: a no-op provider
                return False
            add(_collector)
            tp._ladle_collector = _collector
    return True


class Traced:
    """The tracing context of one request, entered and left in the same contextvars context
    (the worker runs a stream's every step in one context)."""

    def __init__(self, traceparent: str) -> None:
        self.traceparent = traceparent
        self.trace_id = int(traceparent.split("-")[1], 16)
        self._cm: Any = None

    def enter(self) -> None:
        if not _installed():
            return
        from ladle.entities.mlflow_adapter import tracing_context

        cm = tracing_context(self.traceparent)
        _collector.watch(self.trace_id)
        try:
            cm.__enter__()
        except BaseException:               # nothing left watched
            _collector.take(self.trace_id)
            raise
        self._cm = cm

    def leave(self) -> bytes | None:
        """Leave the context; the collected spans as the SPANS frame's payload (None: none)."""
        if self._cm is None:
            return None
        try:
            self._cm.__exit__(None, None, None)
        finally:
            self._cm = None
        spans = _collector.take(self.trace_id)
        return json.dumps([to_dict(s) for s in spans], default=str).encode() if spans else None


def to_dict(span: Any) -> dict:
    """A finished OpenTelemetry span as JSON (the gateway rebuilds it: telemetry/otel_spans.py)."""
    return {
        "name": span.name,
        "trace_id": f"{span.context.trace_id:032x}",
        "span_id": f"{span.context.span_id:016x}",
        "parent_id": f"{span.parent.span_id:016x}" if span.parent is not None else None,
        "start": span.start_time, "end": span.end_time,
        "kind": int(getattr(span.kind, "value", 0)),
        "status": [int(getattr(span.status.status_code, "value", 0)), span.status.description],
        "attributes": dict(span.attributes or {}),
        "events": [{"name": e.name, "time": e.timestamp, "attributes": dict(e.attributes or {})}
                   for e in span.events],
    }


def predict(entity, traced: Traced, meta: dict, body: bytes, cancel: threading.Event):
    """The entity's predict inside the request's tracing context (run in the request's
    contextvars context; a stream's steps run there too, and the context is left after the
    last one). Tracing that cannot start never fails the request."""
    try:
        traced.enter()
    except Exception as e:
        print(f"{time.strftime('%Y-%m-%dT%H:%M:%S')} tracing not available: {e!r}", file=sys.stderr, flush=True)
    return entity.predict(meta, body, cancel)


async def spans(loop: Any, pool: Any, ctx: Any, traced: Traced | None,
                 it=None) -> bytes | None:
    """Leave the request's tracing context (after closing a finished stream, so that the spans
    it ends in its `finally` are in): its spans as a SPANS payload, or None."""
    if traced is None:
        return None

    def leave() -> bytes | None:
        close = getattr(it, "close", None)
        if close is not None:
            close()
        return traced.leave()

    try:
        return await loop.run_in_executor(pool, ctx.run, leave)
    except Exception as e:
        print(f"{time.strftime('%Y-%m-%dT%H:%M:%S')} could not collect the model's spans: {e!r}",
              file=sys.stderr, flush=True)
        return None
