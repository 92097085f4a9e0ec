"""AI Gateway end to end: the real server, a real pyfunc model, real clients (httpx from
several processes, databricks-sdk, openai, the `ladle` CLI), Delta tables read with DuckDB.

The tests share one endpoint; each starts from the same gateway config and queries as its own
principals, so they pass alone and in any order. The concurrent burst runs once per module (a
fixture). That the window admits the limit again a minute later is checked on a fake clock
(tests/unit/test_gateway_ratelimit.py): here it would idle the suite for that minute."""

from __future__ import annotations

import subprocess
import sys
import time
from collections import Counter

import pytest

from e2e_support import client, wait_for
from gateway_fixtures import (  # noqa: F401  (fixtures)
    ENDPOINT, burst, chat_endpoint, chat_model, gw_admin, metric_total, put_gateway, user_token,
)

LOAD_LIMIT = 40
INV = f"/serving-endpoints/{ENDPOINT}/invocations"
BASE = {
    "rate_limits": [
        {"calls": LOAD_LIMIT, "key": "user", "principal": "loadtester", "renewal_period": "minute"},
        {"calls": 2, "key": "user", "principal": "sdk-user", "renewal_period": "minute"},
        {"calls": 1, "key": "user", "principal": "openai-user", "renewal_period": "minute"},
        {"tokens": 12, "key": "user_group", "principal": "gw-tokens", "renewal_period": "minute"},
    ],
    "usage_tracking_config": {"enabled": True},
    "inference_table_config": {"enabled": True, "catalog_name": "main", "schema_name": "gw",
                               "table_name_prefix": "chat"},
    "fallback_config": {"enabled": True},
}


def chat(text: str) -> dict:
    return {"messages": [{"role": "user", "content": text}]}


@pytest.fixture(autouse=True)
def base_config(chat_endpoint, gw_admin):
    put_gateway(gw_admin, BASE)


@pytest.fixture(scope="module")
def load(server, chat_endpoint, gw_admin) -> dict:
    """`loadtester` sends 120 requests at once from 4 processes against its limit of 40."""
    put_gateway(gw_admin, BASE)
    token = user_token(gw_admin, "loadtester")
    before = metric_total(gw_admin, "request_rate_limited_count_total")
    start, results = burst(server, token, ENDPOINT, processes=4, per_process=30)
    return {"start": start, "results": results,
            "limited": metric_total(gw_admin, "request_rate_limited_count_total") - before}


def test_exactly_the_limit_is_admitted_under_concurrent_load_from_processes(load):
    start, results = load["start"], load["results"]
    statuses = Counter(r["status"] for r in results)
    assert statuses == {200: LOAD_LIMIT, 429: 120 - LOAD_LIMIT}, statuses
    refused = [r for r in results if r["status"] == 429]
    assert {r["code"] for r in refused} == {"REQUEST_LIMIT_EXCEEDED"}
    for r in refused:
        # the true wait: the first admitted call (after `start`) leaves the window 60 s later
        ra = int(r["retry_after"])
        assert 60 - (r["t"] - start) - 1 <= ra <= 60, (ra, r["t"] - start)
    assert load["limited"] == 120 - LOAD_LIMIT


def test_guardrails_block_and_mask_on_the_real_model(server, gw_admin):
    put_gateway(gw_admin, {**BASE, "guardrails": {"input": {"pii": {"behavior": "BLOCK"},
                                                            "invalid_keywords": ["project falcon"]}}})
    before = metric_total(gw_admin, "request_guardrail_blocked_count_total")
    r = gw_admin.post(INV, json=chat("Bill 4111 1111 1111 1111 and mail jane@example.org"))
    assert r.status_code == 400 and r.json()["error_code"] == "BAD_REQUEST"
    assert "CREDIT_CARD, EMAIL_ADDRESS" in r.json()["message"]
    r = gw_admin.post(INV, json=chat("status of Project Falcon?"))
    assert r.status_code == 400 and "project falcon" in r.json()["message"]
    assert metric_total(gw_admin, "request_guardrail_blocked_count_total") - before == 2
    put_gateway(gw_admin, {**BASE, "guardrails": {"input": {"pii": {"behavior": "MASK"}},
                                                  "output": {"pii": {"behavior": "MASK"}}}})
    r = gw_admin.post(INV, json=chat("my ssn is 078-05-1120"))
    assert r.json()["choices"][0]["message"]["content"] == "echo: my ssn is <US_SSN>"
    put_gateway(gw_admin, {**BASE, "guardrails": {"output": {"pii": {"behavior": "MASK"}}}})
    r = gw_admin.post(INV, json=chat("call +1 (415) 555-0132 or 10.20.30.40"))
    assert r.status_code == 200
    assert r.json()["choices"][0]["message"]["content"] == "echo: call <PHONE_NUMBER> or <IP_ADDRESS>"
    put_gateway(gw_admin, BASE)


def test_fallback_serves_from_the_next_entity(gw_admin):
    r = gw_admin.post(INV, json=chat("FAIL please"))
    assert r.status_code == 200 and r.headers["served-model-name"] == "backup"
    assert r.json()["choices"][0]["message"]["content"] == "echo: FAIL please"
    ok = gw_admin.post(INV, json=chat("fine"))
    assert ok.headers["served-model-name"] == "flaky"
    put_gateway(gw_admin, {k: v for k, v in BASE.items() if k != "fallback_config"})
    r = gw_admin.post(INV, json=chat("FAIL please"))
    assert r.status_code == 500 and r.headers["served-model-name"] == "flaky"
    put_gateway(gw_admin, BASE)


def test_token_limit_counts_real_usage_for_a_group(server, gw_admin):
    assert gw_admin.post("/api/2.0/ladle/groups", json={"display_name": "gw-tokens"}).status_code == 200
    r = gw_admin.post("/api/2.0/ladle/groups/gw-tokens/members", json={"user_name": "tok-user"})
    assert r.status_code == 200
    eid = gw_admin.get(f"/api/2.0/serving-endpoints/{ENDPOINT}").json()["id"]
    r = gw_admin.patch(f"/api/2.0/permissions/serving-endpoints/{eid}", json={"access_control_list": [
        {"group_name": "gw-tokens", "permission_level": "CAN_QUERY"}]})
    assert r.status_code == 200
    with client(server, user_token(gw_admin, "tok-user")) as tok:
        first = tok.post(INV, json=chat("a b c"))            # 3 prompt + 4 completion tokens
        assert first.status_code == 200 and first.json()["usage"]["total_tokens"] == 7
        assert tok.post(INV, json=chat("a b c")).status_code == 200      # 14 >= 12 afterwards
        r = tok.post(INV, json=chat("a b c"))
        assert r.status_code == 429 and "tokens" in r.json()["message"]
        assert 1 <= int(r.headers["Retry-After"]) <= 60


def test_databricks_sdk_retries_429_on_its_own(server, gw_admin, monkeypatch):
    from databricks.sdk import WorkspaceClient
    from databricks.sdk.clock import RealClock
    from databricks.sdk.config import Config
    from databricks.sdk.errors import TooManyRequests
    from databricks.sdk.service.serving import ChatMessage, ChatMessageRole

    sleeps: list[float] = []
    offset = [0.0]
    # virtual time for the SDK's retry loop: its sleeps are recorded, not waited
    monkeypatch.setattr(RealClock, "time", lambda self: time.time() + offset[0])
    monkeypatch.setattr(RealClock, "sleep", lambda self, s: (sleeps.append(s), offset.__setitem__(0, offset[0] + s)))
    ws = WorkspaceClient(config=Config(host=server.url, token=user_token(gw_admin, "sdk-user"),
                                       retry_timeout_seconds=150))
    msg = [ChatMessage(role=ChatMessageRole.USER, content="hello")]
    for _ in range(2):
        assert ws.serving_endpoints.query(ENDPOINT, messages=msg).choices[0].message.content == "echo: hello"
    before = metric_total(gw_admin, "request_rate_limited_count_total")
    with pytest.raises(TimeoutError) as e:
        ws.serving_endpoints.query(ENDPOINT, messages=msg)
    cause = e.value.__cause__
    assert isinstance(cause, TooManyRequests) and cause.error_code == "REQUEST_LIMIT_EXCEEDED"
    # each 429 made the SDK sleep the server's Retry-After (55-60 s here) and try again
    assert len(sleeps) >= 2 and all(55 <= s <= 61 for s in sleeps), sleeps
    assert metric_total(gw_admin, "request_rate_limited_count_total") - before == len(sleeps)


def test_openai_client_gets_rate_limit_error(server, gw_admin):
    import openai

    oa = openai.OpenAI(base_url=f"{server.url}/serving-endpoints", api_key=user_token(gw_admin, "openai-user"),
                       max_retries=0)
    out = oa.chat.completions.create(model=ENDPOINT, messages=[{"role": "user", "content": "hi"}])
    assert out.choices[0].message.content == "echo: hi" and out.usage.total_tokens == 3
    with pytest.raises(openai.RateLimitError) as e:
        oa.chat.completions.create(model=ENDPOINT, messages=[{"role": "user", "content": "hi"}])
    assert e.value.status_code == 429 and e.value.body["error_code"] == "REQUEST_LIMIT_EXCEEDED"
    assert 55 <= int(e.value.response.headers["retry-after"]) <= 60


def test_usage_api_cli_and_delta_tables_read_with_duckdb(server, gw_admin, load, tmp_path):
    duckdb = pytest.importorskip("duckdb")
    from deltalake import DeltaTable

    with client(server, user_token(gw_admin, "usage-user")) as me:   # no limit of its own
        put_gateway(gw_admin, {**BASE, "guardrails": {"input": {"pii": {"behavior": "BLOCK"},
                                                                "invalid_keywords": ["project falcon"]}}})
        assert me.post(INV, json=chat("Bill 4111 1111 1111 1111")).status_code == 400
        assert me.post(INV, json=chat("status of Project Falcon?")).status_code == 400
        put_gateway(gw_admin, {**BASE, "guardrails": {"output": {"pii": {"behavior": "MASK"}}}})
        assert me.post(INV, json=chat("call 10.20.30.40")).status_code == 200    # 2 + 3 tokens
        put_gateway(gw_admin, BASE)
        r = me.post(INV, json=chat("FAIL please"))                                # 2 + 3 tokens
        assert r.status_code == 200 and r.headers["served-model-name"] == "backup"

    def usage_rows():
        r = gw_admin.get("/api/2.0/ladle/usage", params={"group_by": "requester", "endpoint": ENDPOINT})
        assert r.status_code == 200, r.text
        rows = {row["requester"]: row for row in r.json()["rows"]}
        done = rows.get("loadtester", {}).get("request_count") == 120 and rows.get(
            "usage-user", {}).get("request_count") == 4
        return rows if done else None

    rows = wait_for(usage_rows, 30, 0.25, what="the usage of loadtester and usage-user written")
    assert rows["loadtester"]["error_count"] == 80
    assert rows["loadtester"]["input_token_count"] == 2 * LOAD_LIMIT          # "hello there"
    assert rows["usage-user"]["error_count"] == 2
    assert rows["usage-user"]["output_token_count"] == 3 + 3
    env = {"DATABRICKS_HOST": server.url, "DATABRICKS_TOKEN": server.admin_token, "HOME": str(tmp_path),
           "DATABRICKS_CONFIG_FILE": str(tmp_path / "none"), "PATH": "/usr/bin:/bin"}
    out = subprocess.run([sys.executable, "-c", "from ladle.cli.main import main; main()", "usage", "--by",
                          "requester", "--endpoint", ENDPOINT], capture_output=True, text=True, env=env,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].split()[:3] == ["REQUESTER", "REQUESTS", "ERRORS"]
    assert any(line.split()[:3] == ["loadtester", "120", "80"] for line in lines)

    table = server.home / "tables" / "main" / "gw" / "chat_payload"
    con = duckdb.connect()
    files = DeltaTable(str(table)).file_uris()
    counts = dict(con.execute("SELECT status_code, count(*) FROM read_parquet(?) WHERE requester = 'loadtester' "
                              "GROUP BY status_code", [files]).fetchall())
    assert counts == {200: LOAD_LIMIT, 429: 120 - LOAD_LIMIT}
    mine = "requester = 'usage-user'"
    masked, = con.execute(f"SELECT response FROM read_parquet(?) WHERE {mine} AND request LIKE '%10.20.30.40%'",
                          [files]).fetchone()
    assert "<IP_ADDRESS>" in masked and "10.20.30.40" not in masked      # what the caller got
    blocked = con.execute(f"SELECT count(*) FROM read_parquet(?) WHERE {mine} AND status_code = 400 AND "
                          "response LIKE '%input_guardrail%'", [files]).fetchone()[0]
    assert blocked == 2
    usage_files = DeltaTable(str(server.home / "tables" / "system" / "serving" / "endpoint_usage")).file_uris()
    fallback, = con.execute("SELECT served_entity_name FROM read_parquet(?) u JOIN read_parquet(?) p "
                            "ON u.databricks_request_id = p.databricks_request_id "
                            f"WHERE p.{mine} AND p.request LIKE '%FAIL please%' AND u.status_code = 200",
                            [usage_files, files]).fetchone()
    assert fallback == "backup"
