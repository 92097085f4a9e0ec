"""LLM endpoints end to end, on the shared e2e server, with the real clients:
the `openai` client (chat, streaming chat, completions, embeddings incl. base64), the
databricks-sdk (`query` with messages), MLflow's deployments client (`predict_stream`) and
the `ladle` CLI (`query --stream`).

Served: (a) a tiny causal LM built here (random weights, a tokenizer trained here) added with
`ladle models add-local`, (b) the packaged all-MiniLM-L6-v2 embedding model, (c) external
models pointed at fake OpenAI and Anthropic upstreams run here, keys from the secret store,
(d) a custom pyfunc with predict_stream (its marker path comes from a {{secrets/...}}
environment variable), whose generation stops when the client disconnects.
"""

from __future__ import annotations

import base64
import json
import math
import os
import shutil
import struct
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from ladle.testing.waiting import wait_quiet

from e2e_support import client, wait_settled
from llm_fixtures import FakeUpstream, build_tiny_chat_model, log_streaming_pyfunc

pytest.importorskip("torch", reason="the LLM tests need the llm extra (pip install torch==2.13.0)")
pytest.importorskip("transformers", reason="the LLM tests need the llm extra")

AGENT_MODEL = "main.default.streamer"
MSG = [{"role": "user", "content": "hello world"}]
OPENAI_KEY, ANTHROPIC_KEY = "sk-e2e-openai-0123456789", "sk-ant-e2e-abcdef"


def _openai_upstream(path, headers, body):
    if headers.get("authorization") != f"Bearer {OPENAI_KEY}":
        return 401, {}, {"error": {"message": f"Incorrect API key provided: {headers.get('authorization', '')[7:]}"}}
    if path.endswith("/embeddings"):
        return 200, {}, {"object": "list", "model": body["model"], "usage": {"prompt_tokens": 2, "total_tokens": 2},
                         "data": [{"object": "embedding", "index": 0, "embedding": [0.5, -0.25]}]}
    if body.get("stream"):
        def ch(delta, finish=None):
            return json.dumps({"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": body["model"],
                               "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})
        return 200, {}, [ch({"role": "assistant", "content": ""}), ch({"content": "Hel"}), ch({"content": "lo"}),
                         ch({}, "stop"), "[DONE]"]
    return 200, {}, {"id": "c1", "object": "chat.completion", "created": 1, "model": body["model"],
                     "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hello!"},
                                  "finish_reason": "stop"}],
                     "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}}


def _anthropic_upstream(path, headers, body):
    assert path == "/v1/messages"
    if headers.get("x-api-key") != ANTHROPIC_KEY:
        return 429, {"retry-after": "7"}, {"type": "error", "error": {"type": "rate_limit_error", "message": "slow down"}}
    if body.get("stream"):
        def ev(d):
            return f"event: {d['type']}\ndata: {json.dumps(d)}\n\n".encode()
        return 200, {}, [
            ev({"type": "message_start", "message": {"id": "msg_1", "model": body["model"], "usage": {"input_tokens": 9}}}),
            ev({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Bon"}}),
            ev({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "jour"}}),
            ev({"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 2}}),
            ev({"type": "message_stop"})]
    return 200, {}, {"id": "msg_1", "type": "message", "model": body["model"], "stop_reason": "max_tokens",
                     "content": [{"type": "text", "text": f"Bonjour [{body.get('system', '')}]"}],
                     "usage": {"input_tokens": 9, "output_tokens": 3}}


@pytest.fixture(scope="module")
def llm(server, admin, tmp_path_factory):
    """Everything the LLM tests query, created at once and awaited together."""
    work = tmp_path_factory.mktemp("llm")
    tiny = build_tiny_chat_model(work / "tiny-chat")
    # the model runs as ladle's worker user, which cannot reach pytest's private tmp dir: its
    # marker goes in a directory of its own under the system temp dir
    marker_dir = Path(tempfile.mkdtemp(prefix="ladle-e2e-marker-"))
    marker_dir.chmod(0o777)
    marker = marker_dir / "stream-marker.txt"
    for name, task in (("e2e_tiny_chat", "llm/v1/chat"), ("e2e_tiny_text", "llm/v1/completions")):
        r = admin.post("/api/2.0/ladle/foundation-models/add-local", json={"path": str(tiny), "name": name, "task": task})
        assert r.status_code == 200, r.text
    admin.post("/api/2.0/secrets/scopes/create", json={"scope": "e2e-llm"})
    for key, value in (("openai", OPENAI_KEY), ("marker", str(marker))):
        assert admin.post("/api/2.0/secrets/put", json={"scope": "e2e-llm", "key": key, "string_value": value}).status_code == 200
    log_streaming_pyfunc(server.url, server.admin_token, AGENT_MODEL, work)
    with FakeUpstream(_openai_upstream) as oai, FakeUpstream(_anthropic_upstream) as ant:
        ext = {
            "llm-ext-openai": {"name": "gpt-e2e", "provider": "openai", "task": "llm/v1/chat", "openai_config": {
                "openai_api_key": "{{secrets/e2e-llm/openai}}", "openai_api_base": oai.url}},
            "llm-ext-embed": {"name": "emb-e2e", "provider": "custom", "task": "llm/v1/embeddings",
                              "custom_provider_config": {"custom_provider_url": oai.url,
                                                         "bearer_token_auth": {"token_plaintext": OPENAI_KEY}}},
            "llm-ext-badkey": {"name": "gpt-e2e", "provider": "openai", "task": "llm/v1/chat", "openai_config": {
                "openai_api_key_plaintext": "sk-wrong-key-777", "openai_api_base": oai.url}},
            "llm-ext-anthropic": {"name": "claude-e2e", "provider": "anthropic", "task": "llm/v1/chat",
                                  "anthropic_config": {"anthropic_api_key_plaintext": ANTHROPIC_KEY,
                                                       "anthropic_api_base": ant.url}},
            "llm-ext-limited": {"name": "claude-e2e", "provider": "anthropic", "task": "llm/v1/chat",
                                "anthropic_config": {"anthropic_api_key_plaintext": "over-quota",
                                                     "anthropic_api_base": ant.url}},
            "llm-ext-down": {"name": "gpt-e2e", "provider": "openai", "task": "llm/v1/chat", "openai_config": {
                "openai_api_key_plaintext": OPENAI_KEY, "openai_api_base": "http://127.0.0.1:9"}},
        }
        bodies = [(name, {"served_entities": [{"external_model": em}]}) for name, em in ext.items()]
        pt = [("llm-chat", "system.ai.e2e_tiny_chat"), ("llm-embed", "system.ai.all_minilm_l6_v2")]
        for name, ent in pt:
            r = admin.post("/api/2.0/serving-endpoints/pt", json={"name": name, "config": {"served_entities": [
                {"entity_name": ent, "entity_version": "1", "provisioned_model_units": 1}]}})
            assert r.status_code == 200, r.text
        bodies.append(("llm-agent", {"served_entities": [{
            "entity_name": AGENT_MODEL, "entity_version": "1", "workload_size": "Small", "scale_to_zero_enabled": False,
            "environment_vars": {"LADLE_TEST_MARKER": "{{secrets/e2e-llm/marker}}"}}]}))
        for name, cfg in bodies:
            r = admin.post("/api/2.0/serving-endpoints", json={"name": name, "config": cfg})
            assert r.status_code == 200, r.text
        for name in [n for n, _ in bodies] + [n for n, _ in pt]:
            ep = wait_settled(admin, name, timeout=200)
            assert ep["state"]["config_update"] == "NOT_UPDATING", ep
        yield {"tiny": tiny, "marker": marker, "oai": oai, "ant": ant}
        for name in [n for n, _ in bodies] + [n for n, _ in pt]:
            admin.delete(f"/api/2.0/serving-endpoints/{name}")
        shutil.rmtree(marker_dir, ignore_errors=True)


@pytest.fixture(scope="module")
def oa(server, llm):
    from openai import OpenAI

    return OpenAI(base_url=server.url + "/serving-endpoints", api_key=server.admin_token, max_retries=0, timeout=120)


# -- (a) a local transformers chat model --------------------------------------------------------

def test_chat_real_token_counts(oa, llm):
    from transformers import AutoTokenizer

    r = oa.chat.completions.create(model="llm-chat", messages=MSG, max_tokens=6, temperature=0)
    tok = AutoTokenizer.from_pretrained(llm["tiny"])
    prompt = tok(tok.apply_chat_template(MSG, add_generation_prompt=True, tokenize=False),
                 add_special_tokens=False)["input_ids"]
    assert r.object == "chat.completion" and r.choices[0].message.role == "assistant"
    assert isinstance(r.choices[0].message.content, str)
    assert r.usage.prompt_tokens == len(prompt)
    assert 1 <= r.usage.completion_tokens <= 6
    assert r.usage.total_tokens == r.usage.prompt_tokens + r.usage.completion_tokens
    assert r.choices[0].finish_reason in ("stop", "length")


def test_streaming_chat_matches_unary(oa, llm):
    unary = oa.chat.completions.create(model="llm-chat", messages=MSG, max_tokens=8, temperature=0)
    chunks = list(oa.chat.completions.create(model="llm-chat", messages=MSG, max_tokens=8, temperature=0,
                                             stream=True, stream_options={"include_usage": True}))
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == unary.choices[0].message.content
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == unary.usage.completion_tokens
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] in ("stop", "length")


def test_raw_sse_wire_format(server, llm):
    with client(server) as http:
        with http.stream("POST", "/serving-endpoints/llm-chat/invocations",
                         json={"messages": MSG, "max_tokens": 3, "stream": True}) as r:
            assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
            assert r.headers["served-model-name"] == "e2e_tiny_chat-1"
            raw = r.read().decode()
    events = raw.split("\n\n")
    assert events[-1] == "" and events[-2] == "data: [DONE]"
    assert all(e.startswith("data: ") and "\n" not in e for e in events[:-1])


@pytest.mark.parametrize("body, needle", [
    ({"messages": []}, "messages"),
    ({"messages": [{"role": "wizard", "content": "hi"}]}, "role"),
    ({"messages": MSG, "max_tokens": 100000}, "max_tokens"),
    ({"messages": MSG, "temperature": 5}, "temperature"),
    ({"input": ["a chat endpoint is not an embeddings endpoint"]}, "messages"),
])
def test_bad_chat_requests_are_400(server, llm, body, needle):
    with client(server) as http:
        r = http.post("/serving-endpoints/llm-chat/invocations", json=body)
    assert r.status_code == 400, r.text
    assert r.json()["error_code"] == "INVALID_PARAMETER_VALUE" and needle in r.json()["message"]


def test_completions_on_pay_per_token_endpoint(oa, llm, admin):
    ep = admin.get("/api/2.0/serving-endpoints/ladle-e2e-tiny-text").json()
    assert ep["task"] == "llm/v1/completions" and ep["endpoint_type"] == "FOUNDATION_MODEL_API"
    assert ep["config"]["served_entities"][0]["foundation_model"]["name"] == "system.ai.e2e_tiny_text"
    r = oa.with_options(timeout=300).completions.create(   # a cold start: pay-per-token scales to zero
        model="ladle-e2e-tiny-text", prompt="one two", max_tokens=4, temperature=0)
    assert r.object == "text_completion" and isinstance(r.choices[0].text, str)
    assert r.usage.prompt_tokens >= 1 and 1 <= r.usage.completion_tokens <= 4


def test_databricks_sdk_query_with_messages(workspace, llm):
    from databricks.sdk.service.serving import ChatMessage, ChatMessageRole

    r = workspace.serving_endpoints.query(name="llm-chat", max_tokens=4,
                                          messages=[ChatMessage(role=ChatMessageRole.USER, content="hello")])
    assert r.choices[0].message.role == ChatMessageRole.ASSISTANT
    assert r.usage.completion_tokens >= 1 and r.served_model_name


def test_mlflow_deployments_predict_stream(databricks_env, llm):
    from mlflow.deployments import get_deploy_client

    chunks = list(get_deploy_client("databricks").predict_stream(
        endpoint="llm-chat", inputs={"messages": MSG, "max_tokens": 4, "temperature": 0}))
    assert chunks and all(c["object"] == "chat.completion.chunk" for c in chunks)
    assert chunks[-1]["choices"][0]["finish_reason"] in ("stop", "length")


# -- (b) the packaged MiniLM embedding model ----------------------------------------------------

def _cos(a, b):
    return sum(x * y for x, y in zip(a, b)) / math.sqrt(sum(x * x for x in a) * sum(y * y for y in b))


def test_embeddings_semantic_similarity_and_base64(server, oa, llm):
    texts = ["A man is eating food.", "A man is eating a piece of bread.", "The stock market fell sharply today."]
    r = oa.embeddings.create(model="llm-embed", input=texts, encoding_format="float")
    v = [d.embedding for d in r.data]
    assert len(v) == 3 and len(v[0]) == 384 and abs(_cos(v[0], v[0]) - 1) < 1e-5
    assert abs(sum(x * x for x in v[0]) - 1) < 1e-4   # normalized, like sentence-transformers
    assert _cos(v[0], v[1]) > 0.6 and _cos(v[0], v[2]) < 0.3
    assert r.usage.prompt_tokens > 10
    b64 = oa.embeddings.create(model="llm-embed", input=texts[:1])   # the client asks base64 by default
    assert b64.data[0].embedding == pytest.approx(v[0], abs=1e-6)
    with client(server) as http:
        raw = http.post("/serving-endpoints/embeddings",
                        json={"model": "llm-embed", "input": "x", "encoding_format": "base64"}).json()
    vec = struct.unpack("<384f", base64.b64decode(raw["data"][0]["embedding"]))
    assert len(vec) == 384


def test_pay_per_token_minilm_endpoint(oa, admin):
    listed = {e["name"]: e for e in admin.get("/api/2.0/serving-endpoints").json()["endpoints"]}
    ep = listed["ladle-all-minilm-l6-v2"]
    assert ep["task"] == "llm/v1/embeddings"
    assert ep["config"]["served_entities"][0]["entity_name"] == "system.ai.all_minilm_l6_v2"
    r = oa.with_options(timeout=300).embeddings.create(model="ladle-all-minilm-l6-v2", input="scale to zero wakes up")
    assert len(r.data[0].embedding) == 384


def test_missing_weights_named_in_error(admin):
    r = admin.post("/api/2.0/serving-endpoints/pt", json={"name": "llm-missing", "config": {"served_entities": [
        {"entity_name": "system.ai.qwen2_5_0_5b_instruct", "entity_version": "1", "provisioned_model_units": 1}]}})
    assert r.status_code == 400
    assert "Qwen/Qwen2.5-0.5B-Instruct" in r.json()["message"] and "add-local" in r.json()["message"]


# -- (c) external models ----------------------------------------------------------------------

def test_external_openai_chat_stream_and_secret_hidden(oa, llm, admin):
    r = oa.chat.completions.create(model="llm-ext-openai", messages=MSG)
    assert r.choices[0].message.content == "Hello!" and r.usage.total_tokens == 5
    assert llm["oai"].requests[-1][2]["model"] == "gpt-e2e"
    chunks = list(oa.chat.completions.create(model="llm-ext-openai", messages=MSG, stream=True))
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == "Hello"
    e = oa.embeddings.create(model="llm-ext-embed", input="hi")
    assert e.data[0].embedding == [0.5, -0.25]
    text = json.dumps(admin.get("/api/2.0/serving-endpoints/llm-ext-embed").json())
    assert OPENAI_KEY not in text and "token_plaintext" not in text


def test_external_anthropic_translation(oa, llm):
    r = oa.chat.completions.create(model="llm-ext-anthropic", max_tokens=50,
                                   messages=[{"role": "system", "content": "be brief"}, *MSG])
    assert r.choices[0].message.content == "Bonjour [be brief]"
    assert r.choices[0].finish_reason == "length" and r.usage.prompt_tokens == 9
    sent = llm["ant"].requests[-1][2]
    assert sent["system"] == "be brief" and sent["max_tokens"] == 50 and sent["messages"] == MSG
    chunks = list(oa.chat.completions.create(model="llm-ext-anthropic", messages=MSG, stream=True,
                                             stream_options={"include_usage": True}))
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "Bonjour"
    assert chunks[-1].usage.completion_tokens == 2


def test_external_provider_errors(server, llm):
    from openai import AuthenticationError, OpenAI

    oa = OpenAI(base_url=server.url + "/serving-endpoints", api_key=server.admin_token, max_retries=0)
    with pytest.raises(AuthenticationError) as exc:
        oa.chat.completions.create(model="llm-ext-badkey", messages=MSG)
    assert "sk-wrong-key-777" not in str(exc.value) and "credentials" in str(exc.value)
    with client(server) as http:
        r = http.post("/serving-endpoints/llm-ext-limited/invocations", json={"messages": MSG})
        assert r.status_code == 429 and r.headers["retry-after"] == "7"
        assert r.json()["error_code"] == "REQUEST_LIMIT_EXCEEDED"
        r = http.post("/serving-endpoints/llm-ext-down/invocations", json={"messages": MSG})
        assert r.status_code == 502 and r.json()["error_code"] == "BAD_GATEWAY"
    assert "sk-wrong-key-777" not in server.output()


# -- (d) a custom pyfunc with predict_stream -----------------------------------------------------

def test_pyfunc_predict_stream_openai_and_cli(oa, llm, databricks_env):
    chunks = list(oa.chat.completions.create(model="llm-agent", messages=MSG, max_tokens=3, stream=True))
    assert "".join(c.choices[0].delta.content for c in chunks) == "tok0 tok1 tok2 "
    out = subprocess.run([sys.executable, "-c", "from ladle.cli.main import main; main()", "serving-endpoints",
                          "query", "llm-agent", "--json", json.dumps({"messages": MSG}), "--max-tokens", "4",
                          "--stream"], capture_output=True, text=True, env=databricks_env, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "tok0 tok1 tok2 tok3"


def test_client_disconnect_stops_generation(server, llm):
    marker: Path = llm["marker"]
    with client(server) as http:
        with http.stream("POST", "/serving-endpoints/llm-agent/invocations",
                         json={"messages": MSG, "max_tokens": 200, "stream": True}) as r:
            assert r.status_code == 200
            start = marker.read_text().count("\n") if marker.exists() else 0
            lines = r.iter_lines()
            got = [ln for ln in (next(lines) for _ in range(4)) if ln.startswith("data:")]
            assert len(got) >= 2
    settled = wait_quiet(lambda: marker.read_text().count("\n"), 1.0, 30,
                         what="the model to stop generating")
    assert settled - start < 40                              # long before its 200 chunks


# -- secrets API ------------------------------------------------------------------------------

def test_secrets_api_and_encryption_at_rest(server, admin, llm):
    scopes = [s["name"] for s in admin.get("/api/2.0/secrets/scopes/list").json()["scopes"]]
    assert "e2e-llm" in scopes
    keys = admin.get("/api/2.0/secrets/list", params={"scope": "e2e-llm"}).json()["secrets"]
    assert {k["key"] for k in keys} >= {"openai", "marker"} and all("value" not in k for k in keys)
    assert admin.get("/api/2.0/secrets/get", params={"scope": "e2e-llm", "key": "openai"}).status_code == 403
    assert oct((server.home / "secrets.key").stat().st_mode & 0o777) == "0o600"
    db = b"".join(p.read_bytes() for p in server.home.glob("ladle.db*"))   # the file and its WAL
    assert b"e2e-llm" in db                                                 # the secrets live there
    for plain in (OPENAI_KEY, ANTHROPIC_KEY, "sk-wrong-key-777"):
        assert plain.encode() not in db
    assert os.environ.get("LADLE_TEST_MARKER") is None
    dup = admin.post("/api/2.0/secrets/scopes/create", json={"scope": "e2e-llm"})
    assert dup.status_code == 400 and dup.json()["error_code"] == "RESOURCE_ALREADY_EXISTS"


def test_responses_api_on_foundation_and_external_chat_endpoints(oa, llm):
    """The Responses API through the chat translation: the same text and token counts as chat."""
    chat = oa.chat.completions.create(model="llm-chat", messages=MSG, max_tokens=6, temperature=0)
    r = oa.responses.create(model="llm-chat", input=MSG, max_output_tokens=6, temperature=0)
    assert r.output_text == chat.choices[0].message.content
    assert (r.usage.input_tokens, r.usage.output_tokens) == (chat.usage.prompt_tokens, chat.usage.completion_tokens)
    with oa.responses.stream(model="llm-chat", input=MSG, max_output_tokens=6, temperature=0) as s:
        final = s.get_final_response()
    assert final.output_text == chat.choices[0].message.content
    r = oa.responses.create(model="llm-ext-anthropic", input=MSG, instructions="be brief", max_output_tokens=50)
    assert r.output_text == "Bonjour [be brief]"
    assert r.status == "incomplete" and r.incomplete_details.reason == "max_output_tokens"   # the provider stopped on length
    sent = llm["ant"].requests[-1][2]
    assert sent["system"] == "be brief" and sent["max_tokens"] == 50 and sent["messages"] == MSG
