"""OpenAI-shaped request checks and response builders (ladle.schemas.llm)."""

from __future__ import annotations

import base64
import json
import struct

import pytest

from ladle.schemas import llm
from ladle.schemas.errors import ApiError

CHAT = {"messages": [{"role": "user", "content": "hi"}]}


@pytest.mark.parametrize("task, body, needle", [
    (llm.CHAT, {}, "'messages' is required"),
    (llm.CHAT, {"messages": []}, "non-empty"),
    (llm.CHAT, {"messages": "hi"}, "non-empty"),
    (llm.CHAT, {"messages": [{"role": "robot", "content": "x"}]}, "messages[0].role"),
    (llm.CHAT, {"messages": [{"role": "user"}]}, "messages[0].content"),
    (llm.CHAT, {**CHAT, "max_tokens": 0}, "max_tokens"),
    (llm.CHAT, {**CHAT, "max_tokens": "5"}, "max_tokens"),
    (llm.CHAT, {**CHAT, "temperature": 2.5}, "temperature"),
    (llm.CHAT, {**CHAT, "top_p": 0}, "top_p"),
    (llm.CHAT, {**CHAT, "n": 6}, "n:"),
    (llm.CHAT, {**CHAT, "stop": [1]}, "stop"),
    (llm.CHAT, {**CHAT, "stream": "yes"}, "stream"),
    (llm.CHAT, {**CHAT, "prompt": "x"}, "'prompt' is not accepted"),
    (llm.EMBEDDINGS, CHAT, "got 'messages'"),
    (llm.EMBEDDINGS, {"input": []}, "input"),
    (llm.EMBEDDINGS, {"input": "x", "encoding_format": "hex"}, "encoding_format"),
    (llm.COMPLETIONS, {"prompt": 3}, "prompt"),
])
def test_bad_requests(task, body, needle):
    with pytest.raises(ApiError) as e:
        llm.check_request(task, body)
    assert e.value.status == 400 and needle in e.value.message


@pytest.mark.parametrize("task, body", [
    (llm.CHAT, {**CHAT, "max_tokens": 5, "temperature": 0, "top_p": 1, "n": 2, "stop": "x", "stream": True}),
    (llm.CHAT, {"messages": [{"role": "system", "content": "s"},
                             {"role": "assistant", "content": None, "tool_calls": [{"id": "1"}]},
                             {"role": "tool", "content": "r", "tool_call_id": "1"},
                             {"role": "user", "content": [{"type": "text", "text": "hi"}]}]}),
    (llm.COMPLETIONS, {"prompt": ["a", "b"], "stop": ["\n"]}),
    (llm.EMBEDDINGS, {"input": ["a", "b"], "encoding_format": "base64"}),
])
def test_good_requests(task, body):
    llm.check_request(task, body)


def test_sse_lines_and_done():
    raw = llm.sse({"a": 1}) + llm.SSE_DONE
    assert raw == b'data: {"a":1}\n\ndata: [DONE]\n\n'


def test_base64_is_little_endian_float32():
    v = [0.5, -1.25, 3.0]
    got = llm.encode_vector(v, "base64")
    assert list(struct.unpack("<3f", base64.b64decode(got))) == v
    assert llm.encode_vector(v, "float") == v


def test_response_shapes():
    u = llm.usage(3, 2)
    assert u == {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}
    r = llm.chat_response("id", "m", [("hi", "stop")], u)
    assert r["object"] == "chat.completion" and r["choices"][0]["message"] == {"role": "assistant", "content": "hi"}
    c = llm.chat_chunk("id", "m", 1, content="x")
    assert c["choices"][0]["delta"] == {"content": "x"} and "usage" not in c
    e = llm.embeddings_response("m", [[1.0, 0.0]], 4)
    assert e["data"][0] == {"object": "embedding", "index": 0, "embedding": [1.0, 0.0]}
    assert e["usage"] == {"prompt_tokens": 4, "total_tokens": 4}
    assert json.loads(llm.sse(llm.usage_chunk("id", "m", 1, llm.CHAT, u))[6:])["choices"] == []
