"""OpenTelemetry export settings and its bounded queue: an OTLP endpoint that accepts and never
answers neither fails nor slows the spans' producers; what does not fit is dropped and counted."""

from __future__ import annotations

import logging
import socket
import time

import pytest

from ladle.telemetry import otel as ot

TRACES = {"enabled_telemetry_features": ["TELEMETRY_FEATURE_TRACES"]}
METRICS = {"enabled_telemetry_features": ["TELEMETRY_FEATURE_METRICS"]}


def test_off_unless_the_endpoint_or_the_server_asks():
    o = ot.Otel(env={})
    assert not o.wants(None) and not o.wants({}) and not o.wants(METRICS) and o.wants(TRACES)
    assert o.wants(None, "7") and not o.wants(METRICS, None)  # a served entity's MLflow experiment
    assert o.wants_metrics(METRICS) and not o.wants_metrics(TRACES)
    for var in ot.ENDPOINT_VARS:
        on = ot.Otel(env={var: "http://collector:4318"})
        assert on.wants(None) and on.wants_metrics(None), var
        assert on._url("traces") == "http://collector:4318/v1/traces"
    assert o._tracer is None and o._meter is None            # nothing built by asking


def test_a_full_traces_url_is_used_as_given():
    o = ot.Otel(env={"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://c:4318/v1/traces"})
    assert o._url("traces") == "http://c:4318/v1/traces"


@pytest.fixture
def silent_endpoint():
    """A port that accepts connections and never answers (the worst OTLP endpoint)."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(64)
    yield f"http://127.0.0.1:{s.getsockname()[1]}"
    s.close()


def test_unanswering_endpoint_drops_and_counts_without_slowing_requests(silent_endpoint, caplog):
    o = ot.Otel(env={"LADLE_OTEL_EXPORTER_OTLP_ENDPOINT": silent_endpoint}, max_queue=8, timeout_s=1)
    caplog.set_level(logging.WARNING, "ladle.otel")
    o.tracer()                                               # built (imports) outside the timing
    t0 = time.perf_counter()
    for i in range(200):
        span = ot.start_request(o, {}, "POST /serving-endpoints/ep/invocations", {"i": i})
        with ot.child(o, span, "replica"):
            pass
        ot.end_request(span, 200, {})
    per_request_ms = (time.perf_counter() - t0) * 1000 / 200
    print(f"\nspans into a stuck OTLP endpoint: {per_request_ms:.3f} ms per traced request")
    assert per_request_ms < 5                                # never waits on the exporter
    q = o._queue
    assert q.pending <= 8 and o.dropped >= 400 - 8 - 8      # 400 spans; a batch may be in flight
    assert any("spans dropped" in r.getMessage() for r in caplog.records)
    t1 = time.perf_counter()
    o.shutdown()
    assert time.perf_counter() - t1 < 10                     # a bounded wait at shutdown


def test_untraced_gate_costs_next_to_nothing():
    o = ot.Otel(env={})
    n = 200_000
    t0 = time.perf_counter()
    for _ in range(n):
        o.wants(None)
    ns = (time.perf_counter() - t0) * 1e9 / n
    print(f"\nuntraced request: {ns:.0f} ns for the tracing check (no tracer built)")
    assert o._tracer is None and ns < 5_000


def test_missing_sdk_means_untraced_not_failed(monkeypatch, caplog):
    o = ot.Otel(env={})

    def boom():
        raise ImportError("No module named 'opentelemetry.exporter'")

    monkeypatch.setattr(o, "_build_tracer", boom)
    assert ot.start_request(o, {}, "x", {}) is None
    assert not o.wants(TRACES)
    assert any("not installed" in r.getMessage() for r in caplog.records)


def test_mlflow_spans_go_to_their_experiment_and_others_do_not(monkeypatch):
    from opentelemetry.sdk.trace.export import SpanExportResult

    sent: dict[str, list[str]] = {}

    class Fake:
        def __init__(self, experiment):
            self.experiment = experiment

        def export(self, spans):
            sent.setdefault(self.experiment, []).extend(s.name for s in spans)
            return SpanExportResult.SUCCESS

        def shutdown(self):
            pass

    mt = ot.MlflowTraces("http://mlflow.invalid/", "tok", 1)
    monkeypatch.setattr(mt, "_exporter", lambda exp: Fake(exp))
    o = ot.Otel(env={}, mlflow_exporter=mt)
    for name, exp in (("a", "11"), ("b", "22"), ("plain", None)):
        span = ot.start_request(o, {}, name, {ot.EXPERIMENT: exp} if exp else {})
        with ot.child(o, span, name + ".replica", **({ot.EXPERIMENT: exp} if exp else {})):
            pass
        ot.end_request(span, 200, {})
    o.flush()
    assert {k: sorted(v) for k, v in sent.items()} == {"11": ["a", "a.replica"], "22": ["b", "b.replica"]}
    o.shutdown()
