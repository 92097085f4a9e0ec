"""Guardrails on parsed requests/answers, masking of SSE streams split anywhere, assembling
streams, and reading token usage."""

from __future__ import annotations

import asyncio
import random

import orjson
import pytest

from ladle.gateway import guardrails as g
from ladle.gateway.streams import assemble, masked, release_point, stream_payloads, usage_tokens

PII_TEXT = ("Sure! Reach John at john.doe@example.com or call +1 (415) 555-0132. His card "
            "4111 1111 1111 1111 is on file, IBAN DE89 3704 0044 0532 0130 00, host 10.1.2.3. Thanks!")
MASKED = ("Sure! Reach John at <EMAIL_ADDRESS> or call <PHONE_NUMBER>. His card <CREDIT_CARD> is on "
          "file, IBAN <IBAN_CODE>, host <IP_ADDRESS>. Thanks!")


def rules(**params):
    return g.compile_rules(params)


def chat(*contents, role="user"):
    return {"messages": [{"role": role, "content": c} for c in contents], "max_tokens": 10}


def test_block_names_the_kinds_of_pii_and_carries_the_databricks_verdict():
    with pytest.raises(g.GuardrailBlocked) as e:
        g.guard_request(rules(pii={"behavior": "BLOCK"}),
                        chat("my ssn is 078-05-1120 and mail a@b.io"), llm=True)
    err = e.value
    assert err.status == 400 and err.error_code == "BAD_REQUEST"
    assert "EMAIL_ADDRESS, US_SSN" in err.message
    body = err.body("rid")
    assert body["finishReason"] == "input_guardrail_triggered"
    assert body["input_guardrail"][0]["pii_detection"] is True
    assert body["details"][0]["request_id"] == "rid"


def test_mask_rewrites_only_text_fields_of_llm_requests():
    req = {"messages": [{"role": "system", "content": "be nice"},
                        {"role": "user", "content": [{"type": "text", "text": PII_TEXT}]}],
           "client_request_id": "a@b.io", "temperature": 0.1}
    out = g.guard_request(rules(pii={"behavior": "MASK"}), req, llm=True)
    assert out["messages"][1]["content"][0]["text"] == MASKED
    assert out["client_request_id"] == "a@b.io" and out["temperature"] == 0.1
    assert req["messages"][1]["content"][0]["text"] == PII_TEXT        # input untouched
    prompt = g.guard_request(rules(pii={"behavior": "MASK"}), {"prompt": ["x 078-05-1120"]}, llm=True)
    assert prompt == {"prompt": ["x <US_SSN>"]}


def test_custom_models_are_checked_in_every_string_value():
    req = {"dataframe_split": {"columns": ["note", "n"], "data": [["call 415-555-0132", 1], ["ok", 2]]},
           "usage_context": {"owner": "a@b.io"}}
    out = g.guard_request(rules(pii={"behavior": "MASK"}), req, llm=False)
    assert out["dataframe_split"]["data"] == [["call <PHONE_NUMBER>", 1], ["ok", 2]]
    assert out["usage_context"] == {"owner": "a@b.io"}
    with pytest.raises(g.GuardrailBlocked, match="PHONE_NUMBER"):
        g.guard_request(rules(pii={"behavior": "BLOCK"}), req, llm=False)
    assert g.guard_request(rules(pii={"behavior": "NONE"}), req, llm=False) is req


def test_invalid_keywords_match_whole_words_case_insensitively():
    r = rules(invalid_keywords=["Project Falcon", "secret"])
    with pytest.raises(g.GuardrailBlocked) as e:
        g.guard_request(r, chat("tell me about PROJECT FALCON"), llm=True)
    assert "project falcon" in e.value.message and e.value.verdict["input_guardrail"][0]["invalid_keywords"]
    g.guard_request(r, chat("the secretary said hi"), llm=True)       # 'secret' inside a word: fine


def test_valid_topics_heuristic():
    r = rules(valid_topics=["cooking", "baking recipes"])
    for ok in ("How do I cook pasta?", "Any good recipe for bread?", "I love baking", "COOKING tips"):
        g.guard_request(r, chat(ok), llm=True)
    with pytest.raises(g.GuardrailBlocked) as e:
        g.guard_request(r, chat("Who won the football game?"), llm=True)
    assert e.value.verdict["input_guardrail"][0]["off_topic"] is True
    assert "cooking, baking recipes" in e.value.message
    # only the user's words count, not a system prompt that names the topic
    with pytest.raises(g.GuardrailBlocked):
        g.guard_request(r, {"messages": [{"role": "system", "content": "You help with cooking."},
                                         {"role": "user", "content": "Explain tax law"}]}, llm=True)
    # output: on-topic when the request was
    answer = {"choices": [{"index": 0, "message": {"role": "assistant", "content": "Boil water."}}]}
    g.guard_response(r, answer, chat("how to cook pasta"), llm=True)


def test_output_mask_and_block_on_llm_answers():
    answer = {"id": "x", "choices": [{"index": 0, "message": {"role": "assistant", "content": PII_TEXT}}],
              "usage": {"prompt_tokens": 3, "completion_tokens": 40, "total_tokens": 43}}
    out = g.guard_response(rules(pii={"behavior": "MASK"}), answer, None, llm=True)
    assert out["choices"][0]["message"]["content"] == MASKED and out["usage"] == answer["usage"]
    assert out["output_guardrail"][0]["pii_detection"] is True and "output_guardrail" not in answer
    with pytest.raises(g.GuardrailBlocked) as e:
        g.guard_response(rules(pii={"behavior": "BLOCK"}), answer, None, llm=True)
    assert e.value.verdict["finishReason"] == "output_guardrail_triggered"
    preds = g.guard_response(rules(pii={"behavior": "MASK"}), {"predictions": ["mail x@y.org"]}, None, llm=False)
    assert preds == {"predictions": ["mail <EMAIL_ADDRESS>"]}


# -- streams -------------------------------------------------------------------------------
def sse(obj) -> bytes:
    return b"data: " + orjson.dumps(obj) + b"\n\n"


def chat_stream(text: str, rnd: random.Random, choices=(0,)) -> bytes:
    out = [sse({"object": "chat.completion.chunk", "id": "c1", "model": "m",
                "choices": [{"index": i, "delta": {"role": "assistant", "content": ""}} for i in choices]})]
    i = 0
    while i < len(text):
        n = rnd.randint(1, 6)
        for c in choices:
            out.append(sse({"object": "chat.completion.chunk", "id": "c1", "model": "m",
                            "choices": [{"index": c, "delta": {"content": text[i:i + n]}, "finish_reason": None}]}))
        i += n
    out.append(sse({"object": "chat.completion.chunk", "id": "c1", "model": "m",
                    "choices": [{"index": c, "delta": {}, "finish_reason": "stop"} for c in choices],
                    "usage": {"prompt_tokens": 7, "completion_tokens": 50, "total_tokens": 57}}))
    return b"".join(out) + b"data: [DONE]\n\n"


def run_masker(raw: bytes, rnd: random.Random) -> bytes:
    """The stream through `masked`, cut into random chunks (events and UTF-8 split anywhere)."""
    cuts, pos = [], 0
    while pos < len(raw):
        n = rnd.randint(1, 40)
        cuts.append(raw[pos:pos + n])
        pos += n

    async def chunks():
        for c in cuts:
            yield c

    async def collect() -> bytes:
        return b"".join([c async for c in masked(chunks())])

    return asyncio.run(collect())


@pytest.mark.parametrize("seed", range(12))
def test_stream_masking_handles_values_split_across_chunks_and_bytes(seed):
    rnd = random.Random(seed)
    raw = chat_stream(PII_TEXT, rnd, choices=(0, 1))
    out = run_masker(raw, rnd)
    assert out.endswith(b"data: [DONE]\n\n")
    answer = assemble(stream_payloads(out))
    assert [c["message"]["content"] for c in answer["choices"]] == [MASKED, MASKED]
    assert answer["usage"]["total_tokens"] == 57
    for payload in stream_payloads(out):        # nothing of the raw values ever left
        assert b"4111" not in orjson.dumps(payload) and b"john.doe" not in orjson.dumps(payload)


def test_stream_without_finish_reason_is_flushed_before_done():
    raw = (sse({"object": "text_completion", "choices": [{"index": 0, "text": "ip 10.1."}]})
           + sse({"object": "text_completion", "choices": [{"index": 0, "text": "2.3 end"}]}) + b"data: [DONE]\n\n")
    out = run_masker(raw, random.Random(1))
    answer = assemble(stream_payloads(out))
    assert answer["object"] == "text_completion" and answer["choices"][0]["text"] == "ip <IP_ADDRESS> end"


def test_text_is_released_at_whitespace_once_far_enough_behind():
    s = "word " * 20
    cut = release_point(s)
    assert 0 < cut <= len(s) - 48 and s[cut - 1] == " "
    assert release_point("short text") == 0


def test_usage_tokens_from_answers_and_custom_predictions():
    assert usage_tokens({"usage": {"prompt_tokens": 3, "completion_tokens": 4}}) == (3, 4)
    assert usage_tokens({"usage": {"prompt_tokens": 3, "total_tokens": 10}}) == (3, 7)
    assert usage_tokens({"predictions": {"usage": {"prompt_tokens": 1, "completion_tokens": 2}}}) == (1, 2)
    assert usage_tokens({"predictions": [{"usage": {"prompt_tokens": 5, "completion_tokens": 0}}]}) == (5, 0)
    assert usage_tokens({"predictions": [1, 2]}) is None


def test_non_chat_streams_assemble_to_their_payloads():
    raw = sse({"a": 1}) + sse([1, 2]) + b"data: [DONE]\n\n"
    assert assemble(stream_payloads(raw)) == [{"a": 1}, [1, 2]]


def test_policy_compiles_the_whole_gateway_config_and_legacy_auto_capture():
    from ladle.gateway.policy import compile_policy
    from ladle.schemas.routing import build_route

    cfg = {"served_entities": [{"name": "a", "_key": "k-a"}, {"name": "b", "_key": "k-b"}],
           "traffic_config": {"routes": [{"served_entity_name": "a", "traffic_percentage": 100},
                                         {"served_entity_name": "b", "traffic_percentage": 0}]},
           "auto_capture_config": {"catalog_name": "c", "schema_name": "s"}}
    gw = {"guardrails": {"input": {"pii": {"behavior": "MASK"}}, "output": {"valid_topics": ["cooking"]}},
          "usage_tracking_config": {"enabled": True}, "fallback_config": {"enabled": True}}
    pol = compile_policy(build_route("ep", "e1", cfg, gw, "llm/v1/chat", [{"calls": 5, "renewal_period": "minute"}]))
    assert pol.inp.pii == "MASK" and pol.out.topics == ("cooking",) and pol.out.blocks
    assert pol.usage and pol.fallback and pol.llm and not pol.limits.empty
    assert pol.payload.name == "c.s.ep_payload"          # the legacy inference table
    plain = compile_policy(build_route("ep", "e1", {**cfg, "auto_capture_config": None}, None, None))
    assert plain.payload is None and plain.limits.empty and not plain.records and not plain.parse_request
