"""The model's own MLflow Tracing spans: a traced request (a sampled `traceparent` in its meta)
runs the entity under that context in the replica worker, whose answer carries the spans in a
SPANS frame before END; the gateway rebuilds them under its replica span. An untraced request
gets no SPANS frame and enters no tracing context."""

from __future__ import annotations

import asyncio
import json

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from ladle.replica import protocol as p
from ladle.replica import tracing
from ladle.replica.worker import Worker
from ladle.telemetry.otel import EXPERIMENT, Otel

TRACE = "0af7651916cd43dd8448eb211c80319c"
PARENT = "b7ad6b7169203331"


@pytest.fixture(autouse=True)
def replica_tracing(monkeypatch):
    """MLflow Tracing set up as a replica sets it up at model load (spans kept in memory,
    nothing written anywhere), and reset afterwards."""
    from mlflow.tracing import provider as mp

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    mp.provider.reset()
    tracing.prepare()
    yield
    mp.provider.reset()


class Traced:
    """An entity whose predict opens MLflow spans, unary or streamed."""
    streams = True

    def predict(self, meta, body, cancel=None):
        import mlflow

        req = json.loads(body)

        @mlflow.trace(name="agent.predict")
        def answer(text):
            with mlflow.start_span("lookup") as sp:
                sp.set_attribute("query", text)
            return "agent: " + text

        if not req.get("stream"):
            return 200, "application/json", json.dumps({"out": answer(req["text"])}).encode()

        def gen():
            with mlflow.start_span("stream") as sp:
                for w in req["text"].split():
                    sp.set_attribute("last", w)
                    yield f"data: {w}\n\n".encode()
            yield b"data: [DONE]\n\n"

        return 200, "text/event-stream", gen()


async def _ask(tmp_path, meta, body):
    sock = str(tmp_path / "w.sock")
    server = await asyncio.start_unix_server(Worker(Traced(), 2).serve_connection, path=sock)
    reader, writer = await asyncio.open_unix_connection(sock)
    try:
        writer.write(p.frame(1, p.REQUEST, p.request_payload(meta, json.dumps(body).encode())))
        out = []
        while True:
            _, kind, payload = await asyncio.wait_for(p.read_frame(reader), 20)
            out.append((kind, payload))
            if kind == p.END:
                return out
    finally:
        writer.close()
        server.close()


def _spans(frames):
    sent = [json.loads(payload) for kind, payload in frames if kind == p.SPANS]
    assert len(sent) == 1 and frames[-2][0] == p.SPANS        # one SPANS frame, just before END
    return {s["name"]: s for s in sent[0]}


async def test_a_traced_request_returns_the_models_spans_under_the_callers_span(tmp_path):
    frames = await _ask(tmp_path, {"traceparent": f"00-{TRACE}-{PARENT}-01"}, {"text": "hi"})
    assert json.loads(frames[1][1]) == {"out": "agent: hi"}
    spans = _spans(frames)
    assert set(spans) == {"agent.predict", "lookup"}
    assert {s["trace_id"] for s in spans.values()} == {TRACE}
    assert spans["agent.predict"]["parent_id"] == PARENT
    assert spans["lookup"]["parent_id"] == spans["agent.predict"]["span_id"]
    assert json.loads(spans["lookup"]["attributes"]["query"]) == "hi"
    assert spans["lookup"]["start"] <= spans["lookup"]["end"]


async def test_a_traced_stream_sends_its_spans_after_the_last_chunk(tmp_path):
    frames = await _ask(tmp_path, {"traceparent": f"00-{TRACE}-{PARENT}-01"}, {"text": "a b", "stream": True})
    assert [x for k, x in frames if k == p.CHUNK] == [b"data: a\n\n", b"data: b\n\n", b"data: [DONE]\n\n"]
    spans = _spans(frames)
    assert spans["stream"]["parent_id"] == PARENT and json.loads(spans["stream"]["attributes"]["last"]) == "b"


@pytest.mark.parametrize("meta", [{}, {"traceparent": f"00-{TRACE}-{PARENT}-00"}, {"traceparent": "junk"}])
async def test_untraced_or_unsampled_requests_carry_no_spans(tmp_path, meta):
    frames = await _ask(tmp_path, meta, {"text": "hi"})
    assert [k for k, _ in frames] == [p.HEAD, p.CHUNK, p.END]
    assert not tracing._collector._by_trace                   # nothing left watched


def test_the_gateway_exports_them_under_its_span_and_refuses_other_traces():
    exporter = InMemorySpanExporter()
    otel = Otel(env={}, exporter=exporter)
    try:
        tracer = otel.tracer()
        root = tracer.start_span("POST /serving-endpoints/x/invocations", attributes={EXPERIMENT: "7"})
        tid = root.get_span_context().trace_id
        mine = {"name": "agent.predict", "trace_id": f"{tid:032x}", "span_id": "00000000000000aa",
                "parent_id": f"{root.get_span_context().span_id:016x}", "start": 1, "end": 2,
                "kind": 0, "status": [2, "boom"], "attributes": {"mlflow.spanType": '"AGENT"'},
                "events": [{"name": "exception", "time": 2, "attributes": {"exception.message": "boom"}}]}
        other = dict(mine, trace_id="1" * 32, span_id="00000000000000bb")
        otel.export_spans([json.dumps([mine, other]).encode(), b"not json"], root)
        root.end()
        otel.flush()
        got = {s.name: s for s in exporter.get_finished_spans()}
        assert set(got) == {"agent.predict", "POST /serving-endpoints/x/invocations"}
        model = got["agent.predict"]
        assert model.parent.span_id == root.get_span_context().span_id
        assert model.attributes[EXPERIMENT] == "7" and model.attributes["mlflow.spanType"] == '"AGENT"'
        assert model.status.description == "boom" and model.events[0].name == "exception"
        assert otel.dropped == 2                              # the other trace's span, the bad payload
    finally:
        otel.shutdown()
