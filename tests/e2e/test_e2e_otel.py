"""OpenTelemetry export end to end: a ladle server with `LADLE_OTEL_EXPORTER_OTLP_ENDPOINT` set
sends its request spans over OTLP/HTTP to a real receiver started here (the OpenTelemetry
Collector is not installable on these machines, so the receiver is a small HTTP server decoding
`ExportTraceServiceRequest` with the official opentelemetry-proto messages). A caller's W3C
traceparent is honoured, the external-provider span is its child, and the provider receives the
trace context of that span."""

from __future__ import annotations

import secrets
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from e2e_support import COLUMNS, LadleServer, create_endpoint, entity, wait_for
from llm_fixtures import FakeUpstream
from ladle.testing.registry import tracking
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest, ExportTraceServiceResponse)

CALLER_TRACE = "0af7651916cd43dd8448eb211c80319c"
CALLER_SPAN = "b7ad6b7169203331"
CHAT = {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 5}


class OtlpReceiver:
    """OTLP/HTTP (protobuf) on 127.0.0.1: keeps every span it is sent."""

    def __init__(self) -> None:
        self.spans: list[Any] = []
        self.lock = threading.Lock()
        outer = self

        class H(BaseHTTPRequestHandler):
            def log_message(self, *a: Any) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802
                raw = self.rfile.read(int(self.headers.get("content-length") or 0))
                if self.path == "/v1/traces":
                    req = ExportTraceServiceRequest()
                    req.ParseFromString(raw)
                    with outer.lock:
                        outer.spans += [s for rs in req.resource_spans for ss in rs.scope_spans
                                        for s in ss.spans]
                out = ExportTraceServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("content-type", "application/x-protobuf")
                self.send_header("content-length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> "OtlpReceiver":
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def _upstream(path, headers, body):
    return 200, {}, {"id": "c1", "object": "chat.completion", "created": 1, "model": body["model"],
                     "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hello!"},
                                  "finish_reason": "stop"}],
                     "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}}


@pytest.fixture(scope="module")
def traced(server, tmp_path_factory):
    work = tmp_path_factory.mktemp("otel")
    with OtlpReceiver() as receiver, FakeUpstream(_upstream) as upstream:
        env = {"LADLE_OTEL_EXPORTER_OTLP_ENDPOINT": receiver.url,
               "LADLE_MLFLOW_TRACKING_URI": server.url, "LADLE_MLFLOW_TRACKING_TOKEN": server.admin_token,
               "LADLE_FOUNDATION_ENDPOINTS": "false", "LADLE_RECONCILE_INTERVAL_S": "0.3"}
        srv = LadleServer(work, "dapi-otel-" + secrets.token_hex(8), extra_env=env)
        srv.start()
        try:
            with srv.client(timeout=60) as c:
                create_endpoint(c, {"name": "chat-otel", "config": {"served_entities": [{
                    "name": "gpt", "external_model": {
                        "name": "gpt-4o-mini", "provider": "openai", "task": "llm/v1/chat",
                        "openai_config": {"openai_api_key_plaintext": "sk-otel",
                                          "openai_api_base": upstream.url + "/v1"}}}]}})
            yield srv, receiver, upstream
        finally:
            srv.stop()


def test_spans_reach_the_otlp_receiver_under_the_callers_trace(traced):
    srv, receiver, upstream = traced
    with srv.client(timeout=30) as c:
        r = c.post("/serving-endpoints/chat-otel/invocations", json=CHAT,
                   headers={"traceparent": f"00-{CALLER_TRACE}-{CALLER_SPAN}-01"})
        assert r.status_code == 200 and r.json()["choices"][0]["message"]["content"] == "Hello!", r.text

    def two_spans():
        with receiver.lock:
            mine = [s for s in receiver.spans if s.trace_id.hex() == CALLER_TRACE]
        return mine if len(mine) >= 2 else None

    spans = {s.name: s for s in wait_for(two_spans, timeout=15)}
    root = spans["POST /serving-endpoints/chat-otel/invocations"]
    external = spans["external"]
    assert root.parent_span_id.hex() == CALLER_SPAN
    assert external.parent_span_id == root.span_id
    attrs = {a.key: a.value for a in root.attributes}
    assert attrs["http.response.status_code"].int_value == 200
    assert attrs["ladle.served_entity"].string_value == "gpt"
    # the provider was called with the external span's context
    sent = upstream.requests[-1][1]["traceparent"]
    assert sent == f"00-{CALLER_TRACE}-{external.span_id.hex()}-01"
    with httpx.Client(base_url=srv.url, headers=srv.headers) as c:     # a request without a traceparent
        assert c.post("/serving-endpoints/chat-otel/invocations", json=CHAT).status_code == 200
    newer = wait_for(lambda: [s for s in receiver.spans if s.trace_id.hex() != CALLER_TRACE
                              and s.name.startswith("POST /serving-endpoints/chat-otel")] or None, timeout=15)
    assert newer[0].parent_span_id == b""                                 # a trace of its own


def test_a_traced_endpoint_logs_mlflow_traces_to_its_experiment(server, admin, models):
    """Telemetry config with traces and a served entity's MLFLOW_EXPERIMENT_ID (as Databricks
    agents are deployed): each request is an MLflow trace in that experiment, read back with the
    MLflow client, its root span carrying the inference table's `databricks_request_id`."""
    from mlflow import MlflowClient

    with tracking(server.url, server.admin_token):
        client = MlflowClient()
        exp = client.create_experiment("otel-traces-" + secrets.token_hex(4))
        create_endpoint(admin, {
            "name": "iris-traced",
            "config": {"served_entities": [entity("1", environment_vars={"MLFLOW_EXPERIMENT_ID": exp})]},
            "telemetry_config": {"enabled_telemetry_features": ["TELEMETRY_FEATURE_TRACES"]}})
        rows = {"dataframe_split": {"columns": COLUMNS, "data": [[5.1, 3.5, 1.4, 0.2]]}}
        r = admin.post("/serving-endpoints/iris-traced/invocations", json=rows,
                       headers={"traceparent": f"00-{CALLER_TRACE[::-1]}-{CALLER_SPAN}-01"})
        assert r.status_code == 200, r.text
        traces = wait_for(lambda: client.search_traces(locations=[exp]) or None, timeout=20)
        trace = client.get_trace(traces[0].info.trace_id)
        assert trace.info.trace_id == f"tr-{CALLER_TRACE[::-1]}"
        names = {s.name: s for s in trace.data.spans}
        root = names["POST /serving-endpoints/iris-traced/invocations"]
        assert names["replica"].parent_id == root.span_id
        assert root.attributes["ladle.endpoint"] == "iris-traced"
        assert root.attributes["ladle.request_id"]          # the inference table's databricks_request_id
        admin.delete("/api/2.0/serving-endpoints/iris-traced")
