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
from ladle.testing.model_code import TRACED_AGENT_CODE
from ladle.testing.registry import register_code_model
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest, ExportTraceServiceResponse)

CALLER_TRACE = "0af7651916cd43dd8448eb211c80319c"
CALLER_SPAN = "b7ad6b7169203331"
CHAT = {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 5}


class OtlpReceiver:
    """OTLP/HTTP (protobuf) on 127.0.0.1: keeps every span it is sent."""

    def __init__(self) -> None:
        self.spans: list[Any] = []
        self.logs: list[Any] = []
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
                elif self.path == "/v1/logs":
                    logs = ExportLogsServiceRequest()
                    logs.ParseFromString(raw)
                    with outer.lock:
                        outer.logs += [r for rl in logs.resource_logs for sl in rl.scope_logs
                                       for r in sl.log_records]
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
    # a user reads the trace back through ladle's MLflow proxy once granted CAN_READ on it
    from mlflow.exceptions import MlflowException

    reader = "trace-reader-" + secrets.token_hex(3)
    tok = admin.post("/api/2.0/token-management/on-behalf-of/tokens",
                     json={"user_name": reader, "comment": "traces e2e"}).json()["token_value"]
    with tracking(server.url, tok):
        for read in (lambda c: c.get_trace(trace.info.trace_id), lambda c: c.search_traces(locations=[exp])):
            with pytest.raises(MlflowException) as denied:
                read(MlflowClient())
            assert denied.value.error_code == "PERMISSION_DENIED", str(denied.value)
    g = admin.patch(f"/api/2.0/permissions/experiments/{exp}", json={"access_control_list": [
        {"user_name": reader, "permission_level": "CAN_READ"}]})
    assert g.status_code == 200, g.text
    with tracking(server.url, tok):
        client = MlflowClient()
        assert [t.info.trace_id for t in client.search_traces(locations=[exp])] == [trace.info.trace_id]
        assert {s.name for s in client.get_trace(trace.info.trace_id).data.spans} == set(names)
        import mlflow

        got = mlflow.search_traces(locations=[exp], return_type="list")      # the fluent API, spans too
        assert [t.info.trace_id for t in got] == [trace.info.trace_id] and len(got[0].data.spans) == len(names)


# -- an agent's own spans, and its replica's logs ------------------------------------------
AGENT = "main.default.e2e_traced_agent"
@pytest.fixture(scope="module")
def agent(server, traced, tmp_path_factory):
    """A ResponsesAgent using MLflow Tracing, served by the traced server with traces and logs
    on and MLFLOW_EXPERIMENT_ID set (as Databricks agents are deployed)."""
    from mlflow import MlflowClient

    srv, receiver, _ = traced
    register_code_model(server.url, server.admin_token, AGENT, TRACED_AGENT_CODE, tmp_path_factory.mktemp("agent"))
    with tracking(srv.url, srv.admin_token):
        exp = MlflowClient().create_experiment("agent-traces-" + secrets.token_hex(4))
    with srv.client(timeout=60) as c:
        create_endpoint(c, {"name": "agent-traced", "config": {"served_entities": [{
            "entity_name": AGENT, "entity_version": "1", "workload_size": "Small",
            "scale_to_zero_enabled": False, "environment_vars": {"MLFLOW_EXPERIMENT_ID": exp}}]},
            "telemetry_config": {"enabled_telemetry_features": ["TELEMETRY_FEATURE_TRACES",
                                                                "TELEMETRY_FEATURE_LOGS"]}}, timeout=240)
    return srv, receiver, exp


def _chain(spans: dict[str, Any], name: str) -> list[str]:
    """`name` and its ancestors' names, nearest first (span ids as MLflow or OTLP give them)."""
    by_id = {sid: (n, parent) for n, (sid, parent) in spans.items()}
    out, sid = [name], spans[name][1]
    while sid in by_id:
        n, sid = by_id[sid]
        out.append(n)
    return out


@pytest.mark.slow       # a model registered and served for it: ~25 s on an idle machine
def test_an_agents_own_spans_nest_under_ladles_in_otlp_and_mlflow_read_by_a_reader(agent):
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException
    from openai import OpenAI

    srv, receiver, exp = agent
    trace_hex = secrets.token_hex(16)
    oa = OpenAI(base_url=srv.url + "/serving-endpoints", api_key=srv.admin_token, max_retries=0)
    r = oa.responses.create(model="agent-traced", input="weather?",
                            extra_headers={"traceparent": f"00-{trace_hex}-{CALLER_SPAN}-01"})
    assert r.output_text == "it is sunny"

    # the OTLP receiver: the model's span under the replica span under the request span
    def with_model_span():
        with receiver.lock:
            mine = {s.name: (s.span_id.hex(), s.parent_span_id.hex())
                    for s in receiver.spans if s.trace_id.hex() == trace_hex}
        return mine if "lookup" in mine and "POST /serving-endpoints/responses" in mine else None

    otlp = wait_for(with_model_span, timeout=20)
    chain = _chain(otlp, "lookup")     # lookup <- the agent's predict span <- replica <- request
    assert chain[0] == "lookup" and chain[-2:] == ["replica", "POST /serving-endpoints/responses"], chain
    assert len(chain) == 4 and otlp["POST /serving-endpoints/responses"][1] == CALLER_SPAN

    # the replica's log line, as an OTLP log record of its endpoint
    def logged():
        with receiver.lock:
            return [x for x in receiver.logs if "agent looked up the weather" in x.body.string_value] or None

    rec = wait_for(logged, timeout=20)[0]
    assert {a.key: a.value.string_value for a in rec.attributes}["ladle.endpoint"] == "agent-traced"

    # MLflow: a user with READ on the experiment reads the trace back through ladle
    with srv.client() as c:
        tok = c.post("/api/2.0/token-management/on-behalf-of/tokens",
                     json={"user_name": "trace-reader", "comment": "traces e2e"}).json()["token_value"]
    trace_id = f"tr-{trace_hex}"
    with tracking(srv.url, srv.admin_token):          # logged (export is asynchronous)
        wait_for(lambda: "lookup" in {s.name for s in MlflowClient().get_trace(trace_id).data.spans}
                 or None, timeout=20)
    with tracking(srv.url, tok):
        with pytest.raises(MlflowException) as denied:
            MlflowClient().get_trace(trace_id)
        assert denied.value.error_code == "PERMISSION_DENIED"
    with srv.client() as c:
        g = c.patch(f"/api/2.0/permissions/experiments/{exp}", json={"access_control_list": [
            {"user_name": "trace-reader", "permission_level": "CAN_READ"}]})
        assert g.status_code == 200, g.text
    with tracking(srv.url, tok):
        client = MlflowClient()
        assert [t.info.trace_id for t in client.search_traces(locations=[exp])] == [trace_id]
        trace = client.get_trace(trace_id)
    spans = {s.name: (s.span_id, s.parent_id) for s in trace.data.spans}
    assert _chain(spans, "lookup") == chain
    lookup = next(s for s in trace.data.spans if s.name == "lookup")
    assert lookup.inputs == {"q": "weather"} and lookup.outputs == "sunny"
