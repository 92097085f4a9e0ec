"""OpenTelemetry export of the request path: spans and request metrics over OTLP/HTTP.

Off unless asked: an endpoint whose `telemetry_config` lists TELEMETRY_FEATURE_TRACES (or
_METRICS), or a server with an OTLP endpoint set (`LADLE_OTEL_EXPORTER_OTLP_ENDPOINT` or the
standard `OTEL_EXPORTER_OTLP_ENDPOINT` / `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`), which traces
every endpoint. The SDK is built on first use, so an untraced server does no tracer work.

Export runs on the SDK's BatchSpanProcessor thread behind a bounded queue: an OTLP endpoint that
is slow or away never fails or slows a request; spans that do not fit are dropped and counted
(`dropped`), and the count is logged once per new batch of drops, like the table writer's.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from typing import Any, Mapping

from ladle.telemetry.otel_export import EXPERIMENT, BoundedQueue, MlflowTraces

__all__ = ["EXPERIMENT", "Otel", "child", "end_request", "outgoing", "start_request"]

log = logging.getLogger("ladle.otel")

TRACES, METRICS, LOGS = "TELEMETRY_FEATURE_TRACES", "TELEMETRY_FEATURE_METRICS", "TELEMETRY_FEATURE_LOGS"
ENDPOINT_VARS = ("LADLE_OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
                 "OTEL_EXPORTER_OTLP_ENDPOINT")


def features(telemetry: Mapping[str, Any] | None) -> frozenset[str]:
    return frozenset((telemetry or {}).get("enabled_telemetry_features") or ())


class Otel:
    """The gateway's tracer and meter, made on first use. `wants(telemetry)` is the only call on
    the untraced path: a set lookup."""

    def __init__(self, env: Mapping[str, str] | None = None, max_queue: int = 2048,
                 exporter: Any = None, metric_reader: Any = None, timeout_s: float = 5,
                 mlflow: tuple[str, str | None] | None = None, mlflow_exporter: Any = None,
                 logs_dir: Any = None, log_exporter: Any = None) -> None:
        env = os.environ if env is None else env
        self.base = next((env[v] for v in ENDPOINT_VARS if env.get(v)), None)
        self.everything = self.base is not None       # a server-wide OTLP endpoint traces all
        self.ratio = float(env.get("LADLE_OTEL_TRACES_SAMPLE_RATIO") or 1.0)
        self.headers = env.get("OTEL_EXPORTER_OTLP_HEADERS")
        self.max_queue = max_queue
        self.timeout_s = timeout_s
        self.mlflow = mlflow                           # (tracking URL, token): MLflow traces
        self._mlflow_exporter = mlflow_exporter
        self._mlflow_queue: Any = None
        self._exporter, self._metric_reader = exporter, metric_reader
        self._lock = threading.Lock()
        self._tracer: Any = None
        self._meter: Any = None
        self._provider: Any = None
        self._meter_provider: Any = None
        self._queue: Any = None
        self._reported = 0
        self._reported_at = -1e9
        self.missing = False
        self.refused = 0                               # model spans not taken (otel_spans.py)
        self.logs_dir, self._log_exporter = logs_dir, log_exporter
        self.logs: Any = None                          # replica logs over OTLP (otel_logs.py)
        self._logs_warned = False

    def wants(self, telemetry: Mapping[str, Any] | None, experiment: str | None = None) -> bool:
        """Traced: the server traces everything, the endpoint's telemetry config lists traces,
        or a served entity names an MLflow experiment (its traces go there, as on Databricks)."""
        if self.missing:
            return False
        return self.everything or bool(experiment) or (telemetry is not None and TRACES in features(telemetry))

    def wants_metrics(self, telemetry: Mapping[str, Any] | None) -> bool:
        if self.missing:
            return False
        return self.everything or (telemetry is not None and METRICS in features(telemetry))

    def follow_logs(self, routes: Mapping[str, Any]) -> None:
        """Ship the replica logs of the endpoints whose telemetry config lists logs (called
        with each routing view; a set lookup per endpoint when none does)."""
        wanted = {}
        if self.logs_dir is not None and not self.missing:
            for r in routes.values():
                if r.telemetry is not None and LOGS in features(r.telemetry):
                    for e in r.entities.values():
                        if e.external_model is None:
                            wanted[self.logs_dir / r.id / e.name / "server.log"] = (r.name, e.name)
        if not wanted and self.logs is None:
            return
        if self.logs is None:
            exporter = self._log_exporter
            if exporter is None and self.base is None:     # nowhere to send them: said once
                if not self._logs_warned:
                    self._logs_warned = True
                    log.warning("replica logs asked for, but no OTLP endpoint is set "
                                "(LADLE_OTEL_EXPORTER_OTLP_ENDPOINT)")
                return
            try:
                from ladle.telemetry.otel_logs import LogShipper

                if exporter is None:
                    from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
                    exporter = OTLPLogExporter(endpoint=self._url("logs"), timeout=self.timeout_s)
                self.logs = LogShipper(exporter, self.logs_dir, self.max_queue, self._report)
            except ImportError as e:
                self.missing = True
                log.warning("replica logs asked for, but OpenTelemetry is not installed: %s", e)
                return
        self.logs.follow(wanted)

    @property
    def dropped(self) -> int:
        return (self.refused + (self.logs.dropped if self.logs is not None else 0)
                + sum(q.dropped for q in (self._queue, self._mlflow_queue) if q is not None))

    def tracer(self) -> Any:
        """The tracer, or None when the SDK is not installed (the `otel` extra): logged once,
        and requests go on untraced."""
        if self._tracer is None and not self.missing:
            with self._lock:
                if self._tracer is None and not self.missing:
                    try:
                        self._tracer = self._build_tracer()
                    except ImportError as e:
                        self.missing = True
                        log.warning("tracing asked for, but OpenTelemetry is not installed "
                                    "(pip install 'ladle[otel]'): %s", e)
        return self._tracer

    def _url(self, signal: str) -> str:
        base = (self.base or "http://localhost:4318").rstrip("/")
        return base if base.endswith(f"/v1/{signal}") else f"{base}/v1/{signal}"

    def _build_tracer(self) -> Any:
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased

        exporter = self._exporter
        if exporter is None and self.base is not None:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
            exporter = OTLPSpanExporter(endpoint=self._url("traces"), timeout=self.timeout_s)
        self._provider = TracerProvider(resource=Resource.create({"service.name": "ladle"}),
                                        sampler=ParentBased(TraceIdRatioBased(self.ratio)))
        if exporter is not None:                       # the OTLP collector
            self._queue = BoundedQueue(exporter, self.max_queue, self._report, self.timeout_s)
            self._provider.add_span_processor(self._queue)
        mlflow = self._mlflow_exporter
        if mlflow is None and self.mlflow is not None:
            mlflow = MlflowTraces(self.mlflow[0], self.mlflow[1], self.timeout_s)
        if mlflow is not None:                         # MLflow traces, by experiment
            self._mlflow_queue = BoundedQueue(mlflow, self.max_queue, self._report, self.timeout_s,
                                              accept=lambda sp: EXPERIMENT in (sp.attributes or {}))
            self._provider.add_span_processor(self._mlflow_queue)
        return self._provider.get_tracer("ladle.gateway")

    def export_spans(self, payloads: list[bytes], request_span: Any) -> None:
        """The model's own spans of a traced request (telemetry/otel_spans.py), exported with
        the request's: refused ones (another trace, too many, unreadable) count as dropped."""
        from ladle.telemetry.otel_spans import rebuild

        ctx = request_span.get_span_context()
        if not ctx.trace_flags.sampled:
            return
        exp = (getattr(request_span, "attributes", None) or {}).get(EXPERIMENT)
        spans, refused = rebuild(payloads, ctx.trace_id, exp)
        if refused:
            self.refused += refused
            self._report(self.dropped)
        for q in (self._queue, self._mlflow_queue):
            if q is not None:
                for sp in spans:
                    q.on_end(sp)

    def flush(self) -> None:
        for q in (self._queue, self._mlflow_queue):
            if q is not None:
                q.force_flush()

    def meter(self) -> Any:
        if self._meter is None:
            with self._lock:
                if self._meter is None:
                    from opentelemetry.sdk.metrics import MeterProvider
                    from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader

                    reader = self._metric_reader
                    if reader is None:
                        from opentelemetry.exporter.otlp.proto.http.metric_exporter import (
                            OTLPMetricExporter)
                        reader = PeriodicExportingMetricReader(
                            OTLPMetricExporter(endpoint=self._url("metrics"), timeout=self.timeout_s), 10_000)
                    self._meter_provider = MeterProvider(metric_readers=[reader])
                    m = self._meter_provider.get_meter("ladle.gateway")
                    self._meter = (m.create_counter("ladle.requests", description="served requests"),
                                   m.create_histogram("ladle.request.duration", unit="ms"))
        return self._meter

    def observe(self, endpoint: str, entity: str, status: int, ms: float) -> None:
        try:
            count, duration = self.meter()
        except ImportError as e:
            self.missing = True
            log.warning("metrics asked for, but OpenTelemetry is not installed: %s", e)
            return
        attrs = {"endpoint": endpoint, "served_entity": entity, "status": status}
        count.add(1, attrs)
        duration.record(ms, attrs)

    def _report(self, dropped: int) -> None:
        """Logged at the first drop, then at most every 30 s while drops go on."""
        now = time.monotonic()
        if dropped > self._reported and now - self._reported_at >= 30:
            log.warning("OpenTelemetry export queue full (OTLP endpoint slow or away): "
                        "%d spans dropped so far", dropped)
            self._reported, self._reported_at = dropped, now

    def shutdown(self) -> None:
        for p in (self._provider, self._meter_provider, self.logs):
            if p is not None:
                p.shutdown()


def start_request(otel: Otel, headers: Mapping[str, str], name: str, attrs: Mapping[str, Any]) -> Any:
    """The request span, a child of the caller's W3C `traceparent` when it sent one."""
    from opentelemetry.trace import SpanKind
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    tracer = otel.tracer()
    if tracer is None:
        return None
    parent = TraceContextTextMapPropagator().extract(headers)
    return tracer.start_span(name, context=parent, kind=SpanKind.SERVER, attributes=dict(attrs))


def child(otel: Otel, parent: Any, name: str, **attrs: Any) -> Any:
    """A context manager: a span under `parent`, current while it runs (so `outgoing` sees it)."""
    from opentelemetry.trace import set_span_in_context

    return otel.tracer().start_as_current_span(name, context=set_span_in_context(parent),
                                               attributes=attrs)


def outgoing() -> dict[str, str]:
    """The `traceparent` (and `tracestate`) headers of the current span, for the next hop."""
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    out: dict[str, str] = {}
    TraceContextTextMapPropagator().inject(out)
    return out


def end_request(span: Any, status: int, attrs: Mapping[str, Any]) -> None:
    from opentelemetry.trace import Status, StatusCode

    span.set_attribute("http.response.status_code", status)
    for k, v in attrs.items():
        if v is not None:
            span.set_attribute(k, v)
    if status >= 500:
        span.set_status(Status(StatusCode.ERROR))
    span.end()
