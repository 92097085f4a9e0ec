"""ladle's vLLM engine loop (ladle/entities/foundation_vllm.py) against a fake `LLMEngine`
with vLLM's interface (add_request, step, abort_request, has_unfinished_requests): deltas
from cumulative outputs, continuous batching across concurrent streams, aborts on cancel,
engine failures. vLLM itself needs a GPU and is not exercised here."""

from __future__ import annotations

import threading
from types import SimpleNamespace

import pytest

from ladle.entities.foundation_generate import Outcome
from ladle.entities.foundation_vllm import VllmGenerator, sampling_params
from ladle.schemas.errors import ApiError


class FakeEngine:
    """Each step adds one word to every unfinished request; a request finishes at its
    max_tokens ("length") or when its next word is a stop string ("stop", not returned)."""

    def __init__(self, fail_at_step: int | None = None) -> None:
        self.model_config = SimpleNamespace(max_model_len=64)
        self.requests: dict[str, dict] = {}
        self.steps: list[set[str]] = []
        self.aborted: list[str] = []
        self.fail_at_step = fail_at_step
        self.lock = threading.Lock()
        self.gate = threading.Event()
        self.gate.set()

    def get_tokenizer(self):
        return SimpleNamespace(chat_template=None)

    def add_request(self, rid, prompt, params) -> None:
        with self.lock:
            self.requests[rid] = {"ids": prompt["prompt_token_ids"], "params": params, "words": []}

    def abort_request(self, rids) -> None:
        with self.lock:
            for rid in rids:
                self.aborted.append(rid)
                self.requests.pop(rid, None)

    def has_unfinished_requests(self) -> bool:
        return bool(self.requests)

    def step(self):
        self.gate.wait()
        with self.lock:
            if self.fail_at_step is not None and len(self.steps) == self.fail_at_step:
                raise RuntimeError("CUDA error: out of memory")
            self.steps.append(set(self.requests))
            outs = []
            for rid, r in list(self.requests.items()):
                word = f"w{len(r['words'])} "
                finish = None
                if word.strip() in (r["params"]["stop"] or []):
                    finish = "stop"
                else:
                    r["words"].append(word)
                    if len(r["words"]) >= r["params"]["max_tokens"]:
                        finish = "length"
                o = SimpleNamespace(text="".join(r["words"]), token_ids=list(range(len(r["words"]))),
                                    finish_reason=finish)
                outs.append(SimpleNamespace(request_id=rid, outputs=[o], finished=finish is not None))
                if finish:
                    del self.requests[rid]
            return outs


def generator(engine: FakeEngine) -> VllmGenerator:
    return VllmGenerator("unused", engine=engine, make_params=lambda fields: fields)


def test_stream_yields_deltas_and_fills_the_outcome():
    g = generator(FakeEngine())
    oc = Outcome()
    pieces = list(g.stream([1, 2, 3], {}, 4, [], None, oc))
    assert pieces == ["w0 ", "w1 ", "w2 ", "w3 "]
    assert (oc.completion_tokens, oc.finish_reason) == (4, "length")
    oc = Outcome()
    assert "".join(g.stream([1], {}, 10, ["w2"], None, oc)) == "w0 w1 "
    assert oc.finish_reason == "stop"
    assert g.context == 64


def test_concurrent_streams_are_stepped_together():
    engine = FakeEngine()
    engine.gate.clear()                     # hold the engine until both requests are queued
    g = generator(engine)
    results: dict[int, str] = {}

    def run(i: int) -> None:
        results[i] = "".join(g.stream([i], {}, 5, [], None, Outcome()))

    threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for _ in range(500):                    # both streams have submitted their requests
        if len(g._streams) == 2:
            break
        threading.Event().wait(0.01)
    engine.gate.set()
    for t in threads:
        t.join(5)
    assert results == {0: "w0 w1 w2 w3 w4 ", 1: "w0 w1 w2 w3 w4 "}
    assert max(len(s) for s in engine.steps) == 2, engine.steps   # one step served both


def test_cancel_aborts_the_request_in_the_engine():
    engine = FakeEngine()
    g = generator(engine)
    cancel = threading.Event()
    it = g.stream([1], {}, 1000, [], cancel, Outcome())
    assert next(it) == "w0 "
    cancel.set()
    assert list(it) == []
    for _ in range(100):
        if engine.aborted:
            break
        threading.Event().wait(0.01)
    assert len(engine.aborted) == 1 and not engine.requests


def test_an_engine_failure_reaches_the_waiting_stream():
    g = generator(FakeEngine(fail_at_step=2))
    it = g.stream([1], {}, 10, [], None, Outcome())
    assert next(it) == "w0 " and next(it) == "w1 "
    with pytest.raises(ApiError) as e:
        next(it)
    assert e.value.status == 500 and "out of memory" in e.value.message


@pytest.mark.parametrize("data, want", [
    ({}, {"max_tokens": 7, "stop": None, "temperature": 1.0}),
    ({"temperature": 0}, {"max_tokens": 7, "stop": None, "temperature": 0.0}),
    ({"temperature": 0.5, "top_p": 0.9, "top_k": 3}, {"max_tokens": 7, "stop": None, "temperature": 0.5,
                                                      "top_p": 0.9, "top_k": 3}),
])
def test_sampling_params(data, want):
    assert sampling_params(data, 7, []) == want
    assert sampling_params(data, 7, ["\n"])["stop"] == ["\n"]
