"""OpenTelemetry spans of the request path on the in-process app (fake replicas, in-memory
exporter): off until the endpoint's telemetry config asks, the caller's traceparent honoured and
passed to the replica, the span tree, sampling, and a bounded queue in front of an OTLP
endpoint that does not answer."""

from __future__ import annotations

import json
import time

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from ladle.runtimes.fake import FakeBackend
from ladle.telemetry.otel import Otel
from tests.integration.conftest import create

API = "/api/2.0/serving-endpoints"
INV = "/serving-endpoints/ep/invocations"
CALLER_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
CALLER = f"00-{CALLER_TRACE}-00f067aa0ba902b7-01"


class Seen:
    def __init__(self) -> None:
        self.meta: list[dict] = []

    def __call__(self, spec, meta, body):
        self.meta.append(dict(meta))
        return 200, "application/json", json.dumps({"predictions": [1]}).encode()


@pytest.fixture
def seen():
    return Seen()


@pytest.fixture
def backend(seen):
    return FakeBackend(handler=seen)


@pytest.fixture
def spans(client):
    exporter = InMemorySpanExporter()
    otel = Otel(env={}, exporter=exporter)
    client.app.app.state.services.gateway.otel = otel
    yield exporter, otel
    otel.shutdown()


def finished(exporter, otel, n):
    otel.flush()
    got = exporter.get_finished_spans()
    assert len(got) == n, [s.name for s in got]
    return {s.name: s for s in got}


def traces_on(client, name="ep"):
    r = client.patch(f"{API}/{name}/telemetry-config",
                     json={"telemetry_config": {"enabled_telemetry_features": ["TELEMETRY_FEATURE_TRACES"]}})
    assert r.status_code == 200, r.text
    gw = client.app.app.state.services.gateway
    deadline = time.monotonic() + 5
    while gw.routes[name].telemetry is None:          # the reconciler republishes
        assert time.monotonic() < deadline, "telemetry config never reached the gateway"
        time.sleep(0.02)


def test_untraced_endpoint_makes_no_span_and_builds_no_tracer(client, spans, seen):
    exporter, otel = spans
    create(client)
    assert client.post(INV, json={"inputs": [1]}, headers={"traceparent": CALLER}).status_code == 200
    assert otel._tracer is None and exporter.get_finished_spans() == ()
    assert "traceparent" not in seen.meta[-1]


def test_span_tree_under_the_callers_traceparent_reaches_the_replica(client, spans, seen):
    exporter, otel = spans
    create(client)
    r = client.put(f"{API}/ep/ai-gateway", json={"rate_limits": [{"calls": 100, "renewal_period": "minute"}],
                                                  "guardrails": {"input": {"invalid_keywords": ["falcon"]}}})
    assert r.status_code == 200, r.text
    traces_on(client)
    assert client.post(INV, json={"inputs": [1]}, headers={"traceparent": CALLER}).status_code == 200
    by = finished(exporter, otel, 4)
    root = by["POST /serving-endpoints/ep/invocations"]
    assert format(root.context.trace_id, "032x") == CALLER_TRACE
    assert format(root.parent.span_id, "016x") == "00f067aa0ba902b7"
    assert root.attributes["http.response.status_code"] == 200
    assert root.attributes["ladle.served_entity"] == "m-1"
    for name in ("rate_limit", "guardrails.input", "replica"):
        assert by[name].parent.span_id == root.context.span_id, name
        assert by[name].context.trace_id == root.context.trace_id
    # the replica got the replica span's context
    sent = seen.meta[-1]["traceparent"]
    assert sent == f"00-{CALLER_TRACE}-{format(by['replica'].context.span_id, '016x')}-01"


def test_no_traceparent_starts_a_new_trace_and_errors_are_spans_too(client, spans):
    exporter, otel = spans
    create(client)
    traces_on(client)
    assert client.post(INV, content=b"x" * 10, headers={"content-length": str(10 ** 9)}).status_code == 400
    root = finished(exporter, otel, 1)["POST /serving-endpoints/ep/invocations"]
    assert root.parent is None and root.attributes["http.response.status_code"] == 400


def test_sampling_ratio_zero_records_nothing_but_still_propagates(client, seen):
    exporter = InMemorySpanExporter()
    otel = Otel(env={"LADLE_OTEL_TRACES_SAMPLE_RATIO": "0"}, exporter=exporter)
    client.app.app.state.services.gateway.otel = otel
    create(client)
    traces_on(client)
    assert client.post(INV, json={"inputs": [1]}).status_code == 200
    otel.flush()
    assert exporter.get_finished_spans() == ()
    flags = int(seen.meta[-1]["traceparent"].rsplit("-", 1)[1], 16)
    assert flags & 1 == 0                         # not sampled, and said so downstream
    # a caller that sampled its trace is followed (parent-based)
    assert client.post(INV, json={"inputs": [1]}, headers={"traceparent": CALLER}).status_code == 200
    otel.flush()
    assert len(exporter.get_finished_spans()) == 2
    otel.shutdown()


def test_metrics_feature_counts_requests_by_endpoint_and_status(client):
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader

    reader = InMemoryMetricReader()
    otel = Otel(env={}, metric_reader=reader)
    client.app.app.state.services.gateway.otel = otel
    create(client)
    assert client.post(INV, json={"inputs": [1]}).status_code == 200
    assert otel._meter is None                               # not asked for yet: nothing built
    r = client.patch(f"{API}/ep/telemetry-config",
                     json={"telemetry_config": {"enabled_telemetry_features": ["TELEMETRY_FEATURE_METRICS"]}})
    assert r.status_code == 200, r.text
    gw = client.app.app.state.services.gateway
    deadline = time.monotonic() + 5
    while gw.routes["ep"].telemetry is None:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    for _ in range(2):
        assert client.post(INV, json={"inputs": [1]}).status_code == 200
    metrics = {m.name: m for rm in reader.get_metrics_data().resource_metrics
               for sm in rm.scope_metrics for m in sm.metrics}
    (point,) = metrics["ladle.requests"].data.data_points
    assert point.value == 2 and dict(point.attributes) == {"endpoint": "ep", "served_entity": "m-1", "status": 200}
    assert metrics["ladle.request.duration"].data.data_points[0].count == 2
    assert otel._tracer is None                              # metrics only: no spans
    otel.shutdown()
