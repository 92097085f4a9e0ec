"""Contract tests of ladle.entities.mlflow_adapter: what ladle relies on from MLflow's
internals, asserted on real saved models (a scikit-learn model, a PythonModel with
predict_stream, a ChatModel, a ResponsesAgent) and on MLflow's tracking server app.

Self-contained on purpose: test_mlflow_versions.py runs this module with `--noconftest` in
environments that hold another MLflow (the oldest pyproject.toml allows), with only MLflow,
scikit-learn, httpx and pytest installed.
"""

from __future__ import annotations

import asyncio
import json
import logging

import pytest

from ladle.entities import mlflow_adapter as ad

pytest.importorskip("mlflow")
pytest.importorskip("sklearn")

NO_INFERENCE = ["mlflow"]   # explicit requirements: MLflow does not start a process to infer them

STREAMER = '''
import mlflow
from mlflow.pyfunc import PythonModel


class Streamer(PythonModel):
    def predict(self, context, model_input, params=None):
        return {"choices": [{"index": 0, "message": {"role": "assistant", "content": "unary"}}]}

    def predict_stream(self, context, model_input, params=None):
        n = int(model_input.get("max_tokens") or (params or {}).get("max_tokens") or 5)
        for i in range(n):
            yield {"object": "chat.completion.chunk", "choices": [{"index": 0, "delta": {"content": f"t{i}"}}]}


mlflow.models.set_model(Streamer())
'''

CHAT_MODEL = '''
import mlflow
from mlflow.pyfunc import ChatModel
from mlflow.types.llm import (ChatChoice, ChatChoiceDelta, ChatChunkChoice, ChatCompletionChunk,
                              ChatCompletionResponse, ChatMessage)


class Echo(ChatModel):
    def predict(self, context, messages, params):
        return ChatCompletionResponse(choices=[ChatChoice(index=0, message=ChatMessage(
            role="assistant", content="echo: " + messages[-1].content))])

    def predict_stream(self, context, messages, params):
        for word in messages[-1].content.split():
            yield ChatCompletionChunk(choices=[ChatChunkChoice(index=0, delta=ChatChoiceDelta(
                role="assistant", content=word))])


mlflow.models.set_model(Echo())
'''

AGENT = '''
import mlflow
from mlflow.pyfunc import ResponsesAgent
from mlflow.types.responses import ResponsesAgentResponse, ResponsesAgentStreamEvent


class Agent(ResponsesAgent):
    """Answers with the names of the tools the request offered."""

    def predict(self, request):
        names = ",".join(t.name for t in request.tools or [])
        return ResponsesAgentResponse(output=[self.create_text_output_item(text="tools:" + names, id="m1")])

    def predict_stream(self, request):
        yield ResponsesAgentStreamEvent(**self.create_text_delta(delta="hi", item_id="m1"))


mlflow.models.set_model(Agent())
'''

TOOL = {"type": "function", "name": "lookup", "description": "look it up",
        "parameters": {"type": "object", "properties": {"q": {"type": "string"}}}}


def _code_model(tmp_path_factory, name: str, code: str):
    import mlflow

    work = tmp_path_factory.mktemp(name)
    (work / "model.py").write_text(code)
    mlflow.pyfunc.save_model(str(work / "m"), python_model=str(work / "model.py"),
                             pip_requirements=NO_INFERENCE)
    return mlflow.pyfunc.load_model(str(work / "m"))


@pytest.fixture(scope="module", autouse=True)
def _no_tracing():
    """Agents trace each predict; these tests keep MLflow from writing traces anywhere."""
    import mlflow

    mlflow.tracing.disable()
    yield
    mlflow.tracing.enable()


@pytest.fixture(scope="module")
def frame():
    import pandas as pd
    from sklearn.datasets import make_classification

    x, y = make_classification(n_samples=60, n_features=3, n_informative=2, n_redundant=0, random_state=0)
    return pd.DataFrame(x, columns=["a", "b", "c"]), y


def _sklearn(tmp_path_factory, frame, **kw):
    import mlflow
    from sklearn.linear_model import LogisticRegression

    df, y = frame
    path = tmp_path_factory.mktemp("sk") / "m"
    mlflow.sklearn.save_model(LogisticRegression().fit(df, y), str(path), input_example=df.head(2),
                              serialization_format="cloudpickle", pip_requirements=NO_INFERENCE, **kw)
    return mlflow.pyfunc.load_model(str(path))


@pytest.fixture(scope="module")
def sk(tmp_path_factory, frame):
    return _sklearn(tmp_path_factory, frame)


@pytest.fixture(scope="module")
def streamer(tmp_path_factory):
    return _code_model(tmp_path_factory, "streamer", STREAMER)


def test_sklearn_predict_is_the_flavor_predict_and_honours_pyfunc_predict_fn(sk, frame, tmp_path_factory):
    df, _ = frame
    fn = ad.sklearn_predict(sk)
    assert fn is not None
    assert list(fn(df.head(5))) == list(sk.predict(df.head(5)))
    proba = _sklearn(tmp_path_factory, frame, pyfunc_predict_fn="predict_proba")
    out = ad.sklearn_predict(proba)(df.head(3))
    assert out.shape == (3, 2) and (out == proba.predict(df.head(3))).all()


def test_sklearn_predict_is_none_for_other_flavors(streamer):
    assert ad.sklearn_predict(streamer) is None


def test_score_answers_as_mlflow_models_serve(sk, frame):
    df, _ = frame
    schema = sk.metadata.get_input_schema()
    assert schema.input_names() == ["a", "b", "c"]
    body = json.dumps({"dataframe_split": {"columns": ["a", "b", "c"], "data": df.head(2).values.tolist()}})
    status, mimetype, out = ad.score(sk, schema, body.encode(), "application/json")
    assert (status, mimetype) == (200, "application/json")
    assert json.loads(out) == {"predictions": [int(v) for v in sk.predict(df.head(2))]}
    assert out == ad.predictions_json(sk.predict(df.head(2)))


def test_score_refusals(sk):
    """What the input schema refuses raises MlflowException with a 4xx; what the scoring server
    refuses itself (a charset other than UTF-8) comes back as a status."""
    from mlflow.exceptions import MlflowException

    schema = sk.metadata.get_input_schema()
    with pytest.raises(MlflowException) as e:
        ad.score(sk, schema, b'{"dataframe_split": {"columns": ["a"], "data": [[1.0]]}}', "application/json")
    assert e.value.get_http_status_code() == 400 and "b" in e.value.message
    status, _, out = ad.score(sk, schema, b"{}", "application/json; charset=latin-1")
    assert status == 415 and b"UTF-8" in out


def test_predictions_json_is_the_scoring_servers_shape():
    import numpy as np
    import pandas as pd

    assert json.loads(ad.predictions_json(np.array([1, 2]))) == {"predictions": [1, 2]}
    assert json.loads(ad.predictions_json(pd.DataFrame({"x": [1.5]}))) == {"predictions": [{"x": 1.5}]}


def test_streaming_pyfunc(streamer):
    assert ad.supports_streaming(streamer) is True
    schema = streamer.metadata.get_input_schema()
    data, params = ad.parse_request(streamer, schema, json.dumps(
        {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 3}))
    chunks = list(streamer.predict_stream(data, params))
    assert [c["choices"][0]["delta"]["content"] for c in chunks] == ["t0", "t1", "t2"]


def test_sklearn_does_not_stream(sk):
    assert ad.supports_streaming(sk) is False


def test_chat_model_streams_what_parse_request_gives_it(tmp_path_factory):
    chat = _code_model(tmp_path_factory, "chat", CHAT_MODEL)
    assert ad.supports_streaming(chat) is True
    data, params = ad.parse_request(chat, chat.metadata.get_input_schema(), json.dumps(
        {"messages": [{"role": "user", "content": "one two"}], "temperature": 0.5}))
    words = [c["choices"][0]["delta"]["content"] for c in chat.predict_stream(data, params)]
    assert words == ["one", "two"]


def test_responses_agent_takes_function_tools_once_its_input_schema_is_dropped(tmp_path_factory):
    agent = _code_model(tmp_path_factory, "agent", AGENT)
    assert (agent.metadata.metadata or {}).get("task") == "agent/v1/responses"
    assert ad.supports_streaming(agent) is True
    outputs = agent.metadata.signature.outputs
    ad.drop_input_schema(agent)
    assert agent.metadata.get_input_schema() is None and agent.metadata.signature.outputs == outputs
    body = {"input": [{"role": "user", "content": "hi"}], "tools": [TOOL]}
    status, _, out = ad.score(agent, None, json.dumps(body).encode(), "application/json")
    assert status == 200, out
    assert json.loads(out)["output"][0]["content"][0]["text"] == "tools:lookup"


def test_the_entity_streams_a_request_that_asks_for_it_however_the_key_is_spelled(streamer):
    from ladle.entities.mlflow_pyfunc import PyfuncEntity

    entity = PyfuncEntity(streamer)
    for body in (b'{"messages": [{"role": "user", "content": "x"}], "max_tokens": 2, "stream": true}',
                 b'{"messages": [{"role": "user", "content": "x"}], "max_tokens": 2, "\\u0073tream": true}'):
        status, ctype, out = entity.predict({"content_type": "application/json"}, body)
        assert (status, ctype) == (200, "text/event-stream")
        events = b"".join(out).decode().split("\n\n")
        assert [json.loads(e[6:])["choices"][0]["delta"]["content"] for e in events[:2]] == ["t0", "t1"]
        assert events[2] == "data: [DONE]"
    status, ctype, out = entity.predict({}, b'{"messages": [{"role": "user", "content": "x"}]}')
    assert (status, ctype) == (200, "application/json") and b"unary" in out


def test_a_batch_falls_back_to_single_predictions_with_one_log_line_per_reason(sk, frame, caplog):
    from ladle.entities.mlflow_pyfunc import PyfuncEntity

    df, _ = frame
    entity = PyfuncEntity(sk)
    good = json.dumps({"dataframe_split": {"columns": ["a", "b", "c"], "data": df.head(2).values.tolist()}}).encode()
    csv = ({"content_type": "text/csv"}, b"a,b,c\n0.1,0.2,0.3\n")           # not JSON: the general path
    with caplog.at_level(logging.WARNING, logger="ladle.entities.mlflow_pyfunc"):
        assert [r[0] for r in entity.predict_batch([({}, good), ({}, good)])] == [200, 200]
        assert not caplog.records                                    # batched: nothing to report
        for _ in range(3):
            out = entity.predict_batch([({}, good), csv])
            assert [r[0] for r in out] == [200, 200]
        entity.direct = lambda frame: (_ for _ in ()).throw(RuntimeError("model exploded"))
        for _ in range(2):
            assert [r[0] for r in entity.predict_batch([({}, good), ({}, good)])] == [200, 200]
    msgs = [r.getMessage() for r in caplog.records]
    assert len(msgs) == 2, msgs
    assert "request 2 of a batch of 2" in msgs[0] and "model exploded" in msgs[1]
    assert all("one call per request" in m for m in msgs)


def test_tracking_server_app_serves_the_tracking_api(tmp_path, monkeypatch):
    import httpx

    backend, dest = f"sqlite:///{tmp_path / 'mlflow.db'}", str(tmp_path / "artifacts")
    env = ad.tracking_server_env(backend, dest)
    assert env[next(k for k, v in env.items() if v == dest)] == dest
    for k, v in env.items():   # restored after the test: the app reads the process environment
        monkeypatch.setenv(k, v)
    app = ad.tracking_server_app(backend, dest)

    async def calls():
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1") as c:
            made = await c.post("/api/2.0/mlflow/experiments/create", json={"name": "contract"})
            got = await c.get("/api/2.0/mlflow/experiments/get-by-name", params={"experiment_name": "contract"})
            return made, got

    made, got = asyncio.run(calls())
    assert made.status_code == 200, made.text
    exp = got.json()["experiment"]
    assert exp["experiment_id"] == made.json()["experiment_id"]
    assert exp["artifact_location"].startswith("mlflow-artifacts:")   # artifacts served by the server


TRACING_CHECK = '''
import json
from opentelemetry.sdk.trace import SpanProcessor
from opentelemetry.sdk.trace.export import SpanExportResult
import mlflow
from ladle.entities import mlflow_adapter as ad

exported, ended = [], []

class Keep:
    def export(self, spans):
        for sp in spans:
            exported.append(sp.name)
            if sp.parent is None:
                ad.drop_finished_trace(sp.context.trace_id)
        return SpanExportResult.SUCCESS
    def shutdown(self): pass
    def force_flush(self, timeout_millis=30000): return True

class Seen(SpanProcessor):
    def on_end(self, span): ended.append(span)

assert ad.tracing_keep_in_memory(Keep())
ad.tracer_provider().add_span_processor(Seen())
with ad.tracing_context("00-%s-%s-01"):
    with mlflow.start_span("model-step"):
        pass
span = next(s for s in ended if s.name == "model-step")
print(json.dumps({"trace": span.context.trace_id, "parent": span.parent.span_id, "exported": exported}))
'''


def test_model_spans_under_a_traceparent_stay_in_memory_and_are_its_children(tmp_path):
    """What the replica does for a traced request (ladle/replica/tracing.py), in a fresh process
    (MLflow Tracing's provider is set once per process): spans go to ladle's exporter, none to
    a tracking store, and a span the model opens is a child of the gateway's span."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    trace, parent = "0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331"
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[2])
    out = subprocess.run([sys.executable, "-c", TRACING_CHECK % (trace, parent)], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-3000:]
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert got["trace"] == int(trace, 16) and got["parent"] == int(parent, 16)
    assert "model-step" in got["exported"]
    assert not list(tmp_path.iterdir())          # no mlflow.db or mlruns where it ran
