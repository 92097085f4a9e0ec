"""Custom chat models and agents served through the core: an
`mlflow.pyfunc.ChatModel` and an `mlflow.pyfunc.ResponsesAgent`, registered with the real
MLflow client, answered unary and streamed (SSE, one event per chunk the model yields, then
`data: [DONE]`), through the invocations route and the `openai` client."""

from __future__ import annotations

import json

import pytest

from ladle.testing.registry import register_code_model

from e2e_support import client, wait_settled

CHAT_MODEL = "main.default.e2e_chatmodel"
AGENT = "main.default.e2e_responses_agent"

CHAT_MODEL_CODE = '''
import mlflow
from mlflow.pyfunc import ChatModel
from mlflow.types.llm import (ChatChoice, ChatChoiceDelta, ChatChunkChoice, ChatCompletionChunk,
                              ChatCompletionResponse, ChatMessage)


class Echo(ChatModel):
    def predict(self, context, messages, params):
        text = "echo: " + messages[-1].content
        return ChatCompletionResponse(choices=[ChatChoice(index=0, message=ChatMessage(role="assistant",
                                                                                         content=text))])

    def predict_stream(self, context, messages, params):
        for word in ["echo:", *messages[-1].content.split()]:
            yield ChatCompletionChunk(choices=[ChatChunkChoice(index=0, delta=ChatChoiceDelta(
                role="assistant", content=word + " "))])


mlflow.models.set_model(Echo())
'''

AGENT_CODE = '''
import mlflow
from mlflow.pyfunc import ResponsesAgent
from mlflow.types.responses import ResponsesAgentResponse, ResponsesAgentStreamEvent


def _last_text(request):
    item = request.input[-1]
    content = item.content if hasattr(item, "content") else item["content"]
    return content if isinstance(content, str) else " ".join(c.get("text", "") for c in content)


def _item(x):
    return x if isinstance(x, dict) else x.model_dump()


class Agent(ResponsesAgent):
    """Echoes the last text; asked to look something up, calls the client's first function tool
    (`lookup` when it sent none), then reports what it said."""

    def predict(self, request):
        last = _item(request.input[-1])
        if last.get("type") == "function_call_output":
            return ResponsesAgentResponse(output=[self.create_text_output_item(
                text="the tool said: " + last["output"], id="msg_2")])
        if _last_text(request) == "look it up":
            tool = request.tools[0].name if request.tools else "lookup"
            return ResponsesAgentResponse(output=[self.create_function_call_item(
                id="fc_1", call_id="call_1", name=tool, arguments='{"q": 1}')])
        return ResponsesAgentResponse(output=[self.create_text_output_item(
            text="agent: " + _last_text(request), id="msg_1")])

    def predict_stream(self, request):
        words = ["agent:", *_last_text(request).split()]
        for word in words:
            yield ResponsesAgentStreamEvent(**self.create_text_delta(delta=word + " ", item_id="msg_1"))
        yield ResponsesAgentStreamEvent(type="response.output_item.done", item=self.create_text_output_item(
            text=" ".join(words), id="msg_1"))


mlflow.models.set_model(Agent())
'''

MSG = [{"role": "user", "content": "hello there"}]


def sse_events(raw: bytes) -> list:
    out = []
    for block in raw.decode().split("\n\n"):
        if block.strip():
            assert block.startswith("data: "), block
            out.append(block[6:] if block[6:] == "[DONE]" else json.loads(block[6:]))
    return out


@pytest.fixture(scope="module")
def chat_endpoints(server, admin, tmp_path_factory):
    work = tmp_path_factory.mktemp("chat-models")
    register_code_model(server.url, server.admin_token, CHAT_MODEL, CHAT_MODEL_CODE, work)
    register_code_model(server.url, server.admin_token, AGENT, AGENT_CODE, work)
    common = {"entity_version": "1", "workload_size": "Small", "scale_to_zero_enabled": False}
    for name, model in (("e2e-chatmodel", CHAT_MODEL), ("e2e-agent", AGENT)):
        admin.post("/api/2.0/serving-endpoints", json={"name": name, "config": {"served_entities": [
            {"entity_name": model, **common}]}})
    eps = {}
    for name in ("e2e-chatmodel", "e2e-agent"):
        ep = wait_settled(admin, name, timeout=240)
        assert ep["state"] == {"ready": "READY", "config_update": "NOT_UPDATING"}, ep
        eps[name] = ep
    yield eps
    for name in ("e2e-chatmodel", "e2e-agent"):
        admin.delete(f"/api/2.0/serving-endpoints/{name}")


def test_chat_model_unary_and_streamed_with_the_openai_client(server, chat_endpoints):
    from openai import OpenAI

    oa = OpenAI(base_url=server.url + "/serving-endpoints", api_key=server.admin_token, max_retries=0)
    r = oa.chat.completions.create(model="e2e-chatmodel", messages=MSG)
    assert r.choices[0].message.content == "echo: hello there"
    chunks = list(oa.chat.completions.create(model="e2e-chatmodel", messages=MSG, stream=True))
    assert [c.choices[0].delta.content for c in chunks] == ["echo: ", "hello ", "there "]


def test_chat_model_stream_on_the_invocations_route(server, chat_endpoints):
    with client(server) as http:
        r = http.post("/serving-endpoints/e2e-chatmodel/invocations", json={"messages": MSG, "stream": True})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
    assert r.headers["served-model-name"] == "e2e_chatmodel-1"
    events = sse_events(r.content)
    assert events[-1] == "[DONE]"
    assert "".join(e["choices"][0]["delta"]["content"] for e in events[:-1]) == "echo: hello there "


def test_responses_agent_unary_and_streamed(server, chat_endpoints):
    with client(server) as http:
        r = http.post("/serving-endpoints/e2e-agent/invocations", json={"input": MSG})
        assert r.status_code == 200, r.text
        out = r.json()["output"]
        assert out[0]["content"][0]["text"] == "agent: hello there"
        s = http.post("/serving-endpoints/e2e-agent/invocations", json={"input": MSG, "stream": True})
    assert s.status_code == 200 and s.headers["content-type"].startswith("text/event-stream")
    events = sse_events(s.content)
    assert events[-1] == "[DONE]"
    deltas = [e["delta"] for e in events[:-1] if e["type"] == "response.output_text.delta"]
    assert "".join(deltas) == "agent: hello there "
    assert events[-2]["type"] == "response.output_item.done"


# -- the Responses API (POST /serving-endpoints/responses) ----------------------------------
def _openai(server):
    from openai import OpenAI

    return OpenAI(base_url=server.url + "/serving-endpoints", api_key=server.admin_token, max_retries=0)


def test_responses_api_on_a_chat_endpoint_unary_and_streamed(server, chat_endpoints, databricks_env):
    import openai

    oa = _openai(server)
    r = oa.responses.create(model="e2e-chatmodel", input="hello there", instructions="be brief")
    assert r.object == "response" and r.status == "completed" and r.instructions == "be brief"
    assert r.output_text == "echo: hello there"
    with oa.responses.stream(model="e2e-chatmodel", input=[
            {"role": "user", "content": [{"type": "input_text", "text": "hello there"}]}]) as s:
        kinds = [e.type for e in s]
        final = s.get_final_response()
    assert kinds[0] == "response.created" and kinds[-1] == "response.completed"
    assert kinds.count("response.output_text.delta") == 3           # one per chunk the model yields
    assert final.output_text == "echo: hello there "
    # the Databricks shape on the invocations route, with MLflow's deployments client
    from mlflow.deployments import get_deploy_client
    out = get_deploy_client("databricks").predict(endpoint="e2e-chatmodel", inputs={"input": "hello there"})
    assert out["object"] == "response" and out["output"][0]["content"][0]["text"] == "echo: hello there"
    with pytest.raises(openai.BadRequestError) as e:
        oa.responses.create(model="e2e-chatmodel", input="x", previous_response_id="resp_1")
    assert "previous_response_id" in e.value.body["message"]
    with pytest.raises(openai.BadRequestError) as e:
        oa.responses.create(model="e2e-chatmodel", input="x", tools=[{"type": "web_search"}])
    assert e.value.body["message"].startswith("tools[0].type:")


def test_responses_api_on_a_responses_agent_and_with_the_deployments_client(server, chat_endpoints, databricks_env):
    from mlflow.deployments import get_deploy_client

    oa = _openai(server)
    r = oa.responses.create(model="e2e-agent", input="hello there")
    assert r.output_text == "agent: hello there" and r.status == "completed"
    r = oa.responses.create(model="e2e-agent", input="look it up")      # a function call round trip
    call = r.output[0]
    assert (call.type, call.name, call.call_id, call.arguments) == ("function_call", "lookup", "call_1", '{"q": 1}')
    tool = {"type": "function", "name": "find", "description": "finds things",
            "parameters": {"type": "object", "properties": {"q": {"type": "integer"}}}}
    r = oa.responses.create(model="e2e-agent", input="look it up", tools=[tool])   # the agent sees the tool
    assert (r.output[0].type, r.output[0].name, r.output[0].call_id) == ("function_call", "find", "call_1")
    r = oa.responses.create(model="e2e-agent", input=[
        {"role": "user", "content": "look it up"},
        {"type": "function_call", "call_id": "call_1", "name": "lookup", "arguments": '{"q": 1}'},
        {"type": "function_call_output", "call_id": "call_1", "output": "42"}])
    assert r.output_text == "the tool said: 42"
    with oa.responses.stream(model="e2e-agent", input="hello there") as s:
        deltas = [e.delta for e in s if e.type == "response.output_text.delta"]
        final = s.get_final_response()
    assert "".join(deltas) == "agent: hello there " and final.output_text == "agent: hello there"

    dc = get_deploy_client("databricks")
    out = dc.predict(endpoint="e2e-agent", inputs={"input": "hello there"})      # a string: made an item
    assert out["output"][0]["content"][0]["text"] == "agent: hello there"
    events = list(dc.predict_stream(endpoint="e2e-agent", inputs={"input": MSG}))
    assert "".join(e["delta"] for e in events if e["type"] == "response.output_text.delta") == "agent: hello there "
