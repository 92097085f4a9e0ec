"""`ladle serving-endpoints query`: body merging, JSON answers, SSE streaming."""

from __future__ import annotations

import json
from pathlib import Path

try:
    from .cli_fakes import RecordingServer, Reply, _recording_server, run_se, server  # noqa: F401
except ImportError:  # tests/unit is not a package
    from cli_fakes import RecordingServer, Reply, _recording_server, run_se, server  # noqa: F401

PATH = "/serving-endpoints/chat/invocations"
MESSAGES = [{"role": "user", "content": "hi"}]


def _chat_chunk(content: str | None, index: int = 0) -> str:
    delta = {"role": "assistant"} if content is None else {"content": content}
    return json.dumps({"object": "chat.completion.chunk", "choices": [{"index": index, "delta": delta}]})


def test_flags_merge_into_body_and_override_json(server: RecordingServer, tmp_path: Path) -> None:
    answer = {"object": "chat.completion", "choices": [{"index": 0, "message": {"role": "assistant", "content": ""}}]}
    server.on("POST", PATH, Reply(body=answer, headers={"served-model-name": "m-1"}))
    body = {"messages": MESSAGES, "max_tokens": 5, "temperature": 1.0}
    args = ["query", "chat", "--json", json.dumps(body), "--max-tokens", "7", "--n", "2"]
    result = run_se([*args, "--temperature", "0.5", "--client-request-id", "req-1"], server, tmp_path)
    assert result.exit_code == 0, result.stderr
    (call,) = server.calls()
    assert call.json == {
        "messages": MESSAGES,
        "max_tokens": 7,
        "temperature": 0.5,
        "n": 2,
        "client_request_id": "req-1",
    }
    # inner data of a query answer is printed as-is (only top-level empties are dropped)
    assert json.loads(result.stdout) == answer


def test_custom_model_predictions_printed(server: RecordingServer, tmp_path: Path) -> None:
    server.on("POST", PATH, Reply(body={"predictions": [0, None, ""]}))
    body = {"dataframe_split": {"columns": ["a"], "data": [[1], [2], [3]]}}
    result = run_se(["query", "chat", "--json", json.dumps(body)], server, tmp_path)
    assert result.exit_code == 0
    assert json.loads(result.stdout) == {"predictions": [0, None, ""]}
    assert server.calls()[0].json == body


def test_stream_prints_chat_chunks(server: RecordingServer, tmp_path: Path) -> None:
    events = [_chat_chunk(None), _chat_chunk("Hel"), _chat_chunk("lo"), _chat_chunk(" world"), "[DONE]"]
    server.on("POST", PATH, Reply(sse=events))
    result = run_se(["query", "chat", "--stream", "--json", json.dumps({"messages": MESSAGES})], server, tmp_path)
    assert result.exit_code == 0, result.stderr
    assert result.stdout == "Hello world\n"
    assert server.calls()[0].json == {"messages": MESSAGES, "stream": True}


def test_stream_from_json_prints_completion_chunks(server: RecordingServer, tmp_path: Path) -> None:
    chunks = [json.dumps({"object": "text_completion", "choices": [{"index": 0, "text": t}]}) for t in ["a", "b\n"]]
    server.on("POST", PATH, Reply(sse=[*chunks, "[DONE]"]))
    result = run_se(["query", "chat", "--json", '{"prompt": "x", "stream": true}'], server, tmp_path)
    assert result.exit_code == 0
    assert result.stdout == "ab\n"


def test_stream_keeps_only_the_first_choice(server: RecordingServer, tmp_path: Path) -> None:
    server.on("POST", PATH, Reply(sse=[_chat_chunk("A", 0), _chat_chunk("B", 1), _chat_chunk("C", 0), "[DONE]"]))
    result = run_se(["query", "chat", "--stream", "--n", "2"], server, tmp_path)
    assert result.stdout == "AC\n"


def test_stream_json_output_prints_chunks_as_lines(server: RecordingServer, tmp_path: Path) -> None:
    events = [_chat_chunk("Hel"), _chat_chunk("lo"), "[DONE]"]
    server.on("POST", PATH, Reply(sse=events))
    result = run_se(["query", "chat", "--stream", "-o", "json"], server, tmp_path)
    assert [json.loads(line) for line in result.stdout.splitlines()] == [json.loads(e) for e in events[:2]]


def test_stream_error_event_exits_1(server: RecordingServer, tmp_path: Path) -> None:
    error = json.dumps({"error_code": "INTERNAL_ERROR", "message": "replica died"})
    server.on("POST", PATH, Reply(sse=[_chat_chunk("Hel"), error]))
    result = run_se(["query", "chat", "--stream"], server, tmp_path)
    assert result.exit_code == 1
    assert result.stdout == "Hel\n"
    assert result.stderr == "Error: replica died\n"


def test_stream_with_json_reply_prints_json(server: RecordingServer, tmp_path: Path) -> None:
    server.on("POST", PATH, Reply(body={"predictions": [1, 2]}))
    result = run_se(["query", "chat", "--stream"], server, tmp_path)
    assert result.exit_code == 0
    assert json.loads(result.stdout) == {"predictions": [1, 2]}


def test_stream_http_error(server: RecordingServer, tmp_path: Path) -> None:
    server.on("POST", PATH, Reply(429, {"error_code": "REQUEST_LIMIT_EXCEEDED", "message": "Exceeded rate limit"}))
    result = run_se(["query", "chat", "--stream"], server, tmp_path)
    assert result.exit_code == 1
    assert result.stderr == "Error: Exceeded rate limit\n"


def test_sse_parser() -> None:
    """The SSE reader the CLI, the gateway and the providers share."""
    import asyncio

    from ladle.support import sse

    raw = b"data: a\r\n\r\n: keep-alive\nevent: x\ndata:b\ndata: c\n\ndata: [DONE]"
    assert [e.data for e in sse.events(raw)] == ["a", "b\nc", "[DONE]"]

    async def split() -> list[str]:
        async def chunks():
            for i in range(len(raw)):
                yield raw[i:i + 1]
        return [e.data async for e in sse.aevents(chunks())]

    assert asyncio.run(split()) == ["a", "b\nc", "[DONE]"]
    assert sse.encode(sse.events(b"event: x\ndata: b\ndata: c\n\n")[0]) == b"event: x\ndata: b\ndata: c\n\n"
