"""The Responses API over chat endpoints (ladle.gateway.responses, responses_stream): a
Responses request as chat completions, a chat answer and a chat chunk stream as a response
object and Responses events, a ResponsesAgent's stream completed with its lifecycle events.
The streams are read back with the `openai` client's own stream accumulator, as a user's
`client.responses.stream(...)` reads them."""

from __future__ import annotations

import asyncio
import json
from typing import Any, AsyncIterator

import orjson
import pytest

from ladle.gateway import responses as rs
from ladle.gateway import responses_stream as rstream
from ladle.gateway import streams
from ladle.schemas.errors import ApiError


def test_string_input_and_instructions_become_system_and_user_messages() -> None:
    chat = rs.to_chat({"input": "hi", "instructions": "be brief", "max_output_tokens": 5,
                       "temperature": 0.2, "stream": True})
    assert chat == {"messages": [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}],
                    "max_tokens": 5, "temperature": 0.2, "stream": True}


def test_items_tools_and_a_function_call_round_trip_become_chat_turns() -> None:
    req = {
        "input": [
            {"role": "user", "content": [{"type": "input_text", "text": "weather in "},
                                         {"type": "input_text", "text": "Paris?"}]},
            {"type": "function_call", "call_id": "c1", "name": "get_weather", "arguments": '{"city":"Paris"}'},
            {"type": "function_call", "call_id": "c2", "name": "get_time", "arguments": "{}"},
            {"type": "function_call_output", "call_id": "c1", "output": "sunny"},
            {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "ok"}]},
        ],
        "tools": [{"type": "function", "name": "get_weather", "description": "d",
                   "parameters": {"type": "object"}, "strict": True}],
        "tool_choice": {"type": "function", "name": "get_weather"},
        "text": {"format": {"type": "json_schema", "name": "w", "schema": {"type": "object"}}},
    }
    chat = rs.to_chat(req)
    assert chat["messages"] == [
        {"role": "user", "content": "weather in Paris?"},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "c1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'}},
            {"id": "c2", "type": "function", "function": {"name": "get_time", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "c1", "content": "sunny"},
        {"role": "assistant", "content": "ok"},
    ]
    assert chat["tools"] == [{"type": "function", "function": {
        "name": "get_weather", "description": "d", "parameters": {"type": "object"}, "strict": True}}]
    assert chat["tool_choice"] == {"type": "function", "function": {"name": "get_weather"}}
    assert chat["response_format"] == {"type": "json_schema", "json_schema": {"name": "w", "schema": {"type": "object"}}}


@pytest.mark.parametrize("req, field", [
    ({"input": "x", "previous_response_id": "resp_1"}, "previous_response_id"),
    ({"input": "x", "store": True}, "store"),
    ({"input": "x", "conversation": "conv_1"}, "conversation"),
    ({"input": "x", "tools": [{"type": "web_search"}]}, "tools[0].type"),
    ({"input": "x", "tools": [{"type": "function"}]}, "tools[0].name"),
    ({"input": [{"type": "item_reference", "id": "msg_1"}]}, "input[0].type"),
    ({"input": [{"role": "robot", "content": "x"}]}, "input[0].role"),
    ({"input": [{"type": "function_call", "name": "f", "arguments": "{}"}]}, "input[0].call_id"),
    ({"input": [{"role": "user", "content": [{"type": "input_file", "file_id": "f"}]}]}, "input[0].content[0].type"),
    ({"input": "x", "tool_choice": {"type": "file_search"}}, "tool_choice"),
    ({"input": "x", "frobnicate": 1}, "frobnicate"),
    ({}, "input"),
    ({"input": []}, "input"),
])
def test_what_cannot_be_served_statelessly_is_a_400_naming_the_field(req: dict, field: str) -> None:
    with pytest.raises(ApiError) as e:
        rs.to_chat(req)
    assert e.value.status == 400 and e.value.message.startswith(field + ":"), e.value.message


def test_store_false_and_known_echo_fields_are_accepted() -> None:
    chat = rs.to_chat({"input": "x", "store": False, "metadata": {"a": "b"}, "include": [],
                       "previous_response_id": None})
    assert chat == {"messages": [{"role": "user", "content": "x"}]}


def test_a_chat_answer_becomes_a_response_object() -> None:
    answer = {"id": "chatcmpl-1", "object": "chat.completion", "created": 1700000000, "model": "m",
              "choices": [{"index": 0, "finish_reason": "tool_calls", "message": {
                  "role": "assistant", "content": "let me check",
                  "tool_calls": [{"id": "call_9", "type": "function",
                                  "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'}}]}}],
              "usage": {"prompt_tokens": 7, "completion_tokens": 3, "total_tokens": 10}}
    resp = rs.from_chat({"input": "x", "instructions": "be brief"}, answer, "ep")
    assert resp["object"] == "response" and resp["id"].startswith("resp_") and resp["status"] == "completed"
    assert resp["created_at"] == 1700000000 and resp["model"] == "m" and resp["instructions"] == "be brief"
    msg, call = resp["output"]
    assert msg["type"] == "message" and msg["content"][0] == {"type": "output_text", "text": "let me check",
                                                               "annotations": [], "logprobs": []}
    assert (call["type"], call["call_id"], call["name"], call["arguments"]) == (
        "function_call", "call_9", "get_weather", '{"city":"Paris"}')
    assert resp["usage"]["input_tokens"] == 7 and resp["usage"]["output_tokens"] == 3
    assert resp["usage"]["total_tokens"] == 10
    # the openai client reads it as a user would
    from openai.types.responses import Response
    assert Response.model_validate(resp).output_text == "let me check"


def test_a_length_stop_is_an_incomplete_response_and_a_non_chat_answer_a_502() -> None:
    answer = {"choices": [{"index": 0, "message": {"role": "assistant", "content": "ab"}, "finish_reason": "length"}]}
    resp = rs.from_chat({"input": "x"}, answer, "ep")
    assert resp["status"] == "incomplete" and resp["incomplete_details"] == {"reason": "max_output_tokens"}
    with pytest.raises(ApiError) as e:
        rs.from_chat({"input": "x"}, {"predictions": [1]}, "ep")
    assert e.value.status == 502


# -- streams -------------------------------------------------------------------------------
def _chunk(delta: dict[str, Any], finish: str | None = None, usage: dict | None = None) -> bytes:
    obj: dict[str, Any] = {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m",
                           "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
    if usage:
        obj["usage"] = usage
    return b"data: " + orjson.dumps(obj) + b"\n\n"


async def _feed(parts: list[bytes]) -> AsyncIterator[bytes]:
    for p in parts:
        yield p


def _run(gen: AsyncIterator[bytes]) -> bytes:
    async def go() -> bytes:
        return b"".join([c async for c in gen])
    return asyncio.run(go())


def _events(raw: bytes) -> list[dict[str, Any]]:
    out = []
    for block in raw.decode().split("\n\n"):
        if block.strip():
            ev, data = block.split("\n", 1)
            obj = json.loads(data.removeprefix("data: "))
            assert ev == "event: " + obj["type"]
            out.append(obj)
    return out


def _openai_reads(events: list[dict[str, Any]]) -> Any:
    """The final response the `openai` client's stream accumulator builds from `events`."""
    from openai import omit
    from openai._models import construct_type
    from openai.lib.streaming.responses._responses import ResponseStreamState
    from openai.types.responses import ResponseStreamEvent

    state = ResponseStreamState(input_tools=omit, text_format=omit)
    seen = []
    for e in events:
        for out in state.handle_event(construct_type(type_=ResponseStreamEvent, value=e)):
            seen.append(out)
    return state._completed_response, seen


def test_a_chat_stream_becomes_responses_events_the_openai_client_accumulates() -> None:
    raw = _run(rstream.chat_to_responses(_feed([
        _chunk({"role": "assistant", "content": "Hel"}), _chunk({"content": "lo"}),
        _chunk({"tool_calls": [{"index": 0, "id": "call_1", "type": "function",
                                "function": {"name": "f", "arguments": '{"a"'}}]}),
        _chunk({"tool_calls": [{"index": 0, "function": {"arguments": ": 1}"}}]}),
        _chunk({}, "tool_calls", {"prompt_tokens": 4, "completion_tokens": 2, "total_tokens": 6}),
        b"data: [DONE]\n\n"]), {"input": "hi", "stream": True}, "ep"))
    events = _events(raw)
    assert [e["type"] for e in events] == [
        "response.created", "response.output_item.added", "response.content_part.added",
        "response.output_text.delta", "response.output_text.delta", "response.output_item.added",
        "response.function_call_arguments.delta", "response.function_call_arguments.delta",
        "response.output_text.done", "response.content_part.done", "response.output_item.done",
        "response.function_call_arguments.done", "response.output_item.done", "response.completed"]
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    final, seen = _openai_reads(events)
    assert final.output_text == "Hello"
    assert final.output[1].call_id == "call_1" and final.output[1].arguments == '{"a": 1}'
    assert final.usage.input_tokens == 4 and final.usage.output_tokens == 2
    assert [e.delta for e in seen if e.type == "response.output_text.delta"] == ["Hel", "lo"]
    # the gateway's own accounting of the chat stream it passed on is unchanged
    assert streams.usage_tokens({"usage": {"input_tokens": 4, "output_tokens": 2}}) == (4, 2)


def test_an_error_in_a_chat_stream_is_an_error_event() -> None:
    raw = _run(rstream.chat_to_responses(_feed([
        _chunk({"content": "a"}), b'data: {"error": {"message": "upstream overloaded"}}\n\n']),
        {"input": "hi"}, "ep"))
    events = _events(raw)
    assert events[-1]["type"] == "error" and events[-1]["message"] == "upstream overloaded"
    assert "response.completed" not in [e["type"] for e in events]


def test_a_responses_agent_stream_gets_its_lifecycle_events() -> None:
    # what mlflow's ResponsesAgent.create_text_delta / create_text_output_item yield
    deltas = [{"type": "response.output_text.delta", "item_id": "msg_1", "delta": w} for w in ("agent: ", "hi ")]
    done = {"type": "response.output_item.done", "item": {
        "type": "message", "id": "msg_1", "role": "assistant", "status": "completed",
        "content": [{"type": "output_text", "text": "agent: hi", "annotations": []}]}}
    parts = [b"data: " + orjson.dumps(e) + b"\n\n" for e in (*deltas, done)] + [b"data: [DONE]\n\n"]
    events = _events(_run(rstream.agent_responses(_feed(parts), {"input": "hi"}, "ep")))
    assert events[0]["type"] == "response.created" and events[-1]["type"] == "response.completed"
    final, seen = _openai_reads(events)
    assert final.output_text == "agent: hi"
    assert "".join(e.delta for e in seen if e.type == "response.output_text.delta") == "agent: hi "


def test_an_agent_gets_its_request_as_sent_with_input_as_items() -> None:
    req = {"input": "hi", "instructions": "be brief", "tools": [{"type": "function", "name": "f"}],
           "custom_inputs": {"k": 1}}
    assert rs.for_agent(req) == {"input": [{"role": "system", "content": "be brief"},
                                           {"role": "user", "content": "hi"}],
                                 "tools": [{"type": "function", "name": "f"}], "custom_inputs": {"k": 1}}
    with pytest.raises(ApiError) as e:
        rs.for_agent({"input": "x", "previous_response_id": "resp_1"})
    assert e.value.message.startswith("previous_response_id:")


def test_the_gateway_reads_the_usage_of_responses_answers_unary_and_streamed() -> None:
    usage = {"input_tokens": 5, "output_tokens": 2, "total_tokens": 7}
    assert streams.usage_tokens({"object": "response", "usage": usage}) == (5, 2)
    events = [{"type": "response.output_text.delta", "delta": "a"},
              {"type": "response.completed", "response": {"usage": usage}}]
    assert streams.usage_tokens(events) == (5, 2)
    assert streams.usage_tokens([{"type": "response.output_text.delta", "delta": "a"}]) is None


def test_an_error_in_an_agent_stream_is_an_error_event() -> None:
    parts = [b'data: {"type": "response.output_text.delta", "item_id": "m", "delta": "a"}\n\n',
             b'data: {"error_code": "INTERNAL_ERROR", "message": "the agent failed"}\n\n']
    events = _events(_run(rstream.agent_responses(_feed(parts), {"input": "hi"}, "ep")))
    assert events[0]["type"] == "response.created"
    assert (events[-1]["type"], events[-1]["message"]) == ("error", "the agent failed")
    assert "response.completed" not in [e["type"] for e in events]


def test_a_served_models_task_is_read_from_its_mlmodel(tmp_path) -> None:
    from ladle.entities.prepare import model_dir
    from ladle.entities.signature import model_task

    assert model_task(tmp_path, "m", "1") is None                     # not on this machine
    d = model_dir(tmp_path, "m", "1")
    d.mkdir(parents=True)
    (d / "MLmodel").write_text("flavors: {}\n")
    assert model_task(tmp_path, "m", "1") == ""                       # declares none
    (d / "MLmodel").write_text("flavors: {}\nmetadata:\n  task: agent/v1/responses\n")
    assert model_task(tmp_path, "m", "1") == "agent/v1/responses"
