"""The export side of OpenTelemetry (telemetry/otel.py): a bounded, counting queue in front of
an exporter, and MLflow's OTLP endpoint as an exporter (one experiment per request)."""

from __future__ import annotations

import threading
from typing import Any, Sequence

EXPERIMENT = "ladle.mlflow_experiment_id"      # on every span of a request traced to MLflow
REGISTRY_WAKE_S = 30.0                         # the least time an export to MLflow may take


class Admission:
    """What an OTel batch processor's own queue does not do: count the items handed to it and
    not yet exported, and refuse (counting, then reporting the count) past `max_queue`."""

    def __init__(self, max_queue: int, report: Any) -> None:
        self.pending = 0
        self.dropped = 0
        self.max_queue = max_queue
        self._report = report or (lambda n: None)
        self._lock = threading.Lock()

    def _admit(self) -> bool:
        with self._lock:
            if self.pending >= self.max_queue:
                self.dropped += 1
                full = True
            else:
                self.pending += 1
                full = False
        if full:
            self._report(self.dropped)
        return not full

    def done(self, n: int) -> None:
        with self._lock:
            self.pending = max(0, self.pending - n)


class BoundedQueue(Admission):
    """A BatchSpanProcessor that counts what it drops. The SDK's queue drops silently when full;
    this keeps its own count of spans handed over and not yet exported, and drops (counting)
    past `max_queue`, so the count can be reported."""

    def __init__(self, exporter: Any, max_queue: int, report: Any, timeout_s: float = 5,
                 accept: Any = None) -> None:
        from opentelemetry.sdk.trace.export import BatchSpanProcessor

        super().__init__(max_queue, report)
        self.accept = accept
        self._inner = BatchSpanProcessor(Counting(exporter, self), max_queue_size=max_queue + 1,
                                         schedule_delay_millis=500,
                                         max_export_batch_size=min(512, max_queue),
                                         export_timeout_millis=timeout_s * 1000)

    # the SpanProcessor interface (not subclassed: this module imports without the SDK)
    def on_start(self, span: Any, parent_context: Any = None) -> None:
        pass

    def _on_ending(self, span: Any) -> None:
        pass

    def on_end(self, span: Any) -> None:
        if self.accept is not None and not self.accept(span):
            return
        if self._admit():
            self._inner.on_end(span)

    def shutdown(self) -> None:
        self._inner.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self._inner.force_flush(timeout_millis)


class Counting:
    """An OTLP exporter that tells its bounded queue (anything with `done(n)`) how many items
    left it, sent or failed; spans here, log records in otel_logs."""

    def __init__(self, exporter: Any, queue: Any) -> None:
        self.exporter, self.queue = exporter, queue

    def export(self, batch: Sequence[Any]) -> Any:
        try:
            return self.exporter.export(batch)
        finally:
            self.queue.done(len(batch))

    def shutdown(self) -> None:
        self.exporter.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return getattr(self.exporter, "force_flush", lambda *_: True)(timeout_millis)


class MlflowTraces:
    """Spans to MLflow's own OTLP endpoint (`/v1/traces` on the tracking server), one request
    per experiment (`x-mlflow-experiment-id`): MLflow stores them as traces (id `tr-` + the
    OpenTelemetry trace id) with ladle's spans as the trace's spans."""

    def __init__(self, url: str, token: str | None, timeout_s: float) -> None:
        self.url, self.token, self.timeout_s = url.rstrip("/"), token, timeout_s
        self._by_experiment: dict[str, Any] = {}

    def _exporter(self, experiment: str) -> Any:
        if experiment not in self._by_experiment:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            headers = {"x-mlflow-experiment-id": experiment}
            if self.token:
                headers["Authorization"] = f"Bearer {self.token}"
            self._by_experiment[experiment] = OTLPSpanExporter(   # the embedded registry may be
                endpoint=f"{self.url}/v1/traces", headers=headers,  # starting (seconds): wait for it
                timeout=max(self.timeout_s, REGISTRY_WAKE_S))
        return self._by_experiment[experiment]

    def export(self, spans: Sequence[Any]) -> Any:
        from opentelemetry.sdk.trace.export import SpanExportResult

        groups: dict[str, list[Any]] = {}
        for sp in spans:
            groups.setdefault(str(sp.attributes[EXPERIMENT]), []).append(sp)
        ok = all(self._exporter(exp).export(group) == SpanExportResult.SUCCESS
                 for exp, group in groups.items())
        return SpanExportResult.SUCCESS if ok else SpanExportResult.FAILURE

    def shutdown(self) -> None:
        for e in self._by_experiment.values():
            e.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True
