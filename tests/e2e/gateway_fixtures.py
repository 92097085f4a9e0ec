"""Fixtures of the AI Gateway end-to-end tests: a chat-shaped custom pyfunc model (its
answers carry a real `usage`), one endpoint serving it twice, and helpers that drive the
server from several client processes at once."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from typing import Any

import pytest

from ladle.testing.registry import register_code_model

from e2e_support import LadleServer, client, create_endpoint

CHAT_MODEL = "main.default.gw_echo_chat"
ENDPOINT = "gw-chat"

CHAT_MODEL_CODE = '''
import os

import mlflow
from mlflow.exceptions import MlflowException
from mlflow.pyfunc import PythonModel


class EchoChat(PythonModel):
    """Answers a chat request with 'echo: <last message>' and a usage of one token per word;
    fails with a 500 on 'FAIL' when its served entity sets GW_FLAKY=1."""

    def predict(self, context, model_input, params=None):
        if not isinstance(model_input, dict) or "messages" not in model_input:
            return model_input
        text = model_input["messages"][-1]["content"]
        if "FAIL" in text and os.environ.get("GW_FLAKY") == "1":
            raise MlflowException("the flaky entity failed on purpose", error_code="INTERNAL_ERROR")
        reply = "echo: " + text
        prompt = sum(len(m["content"].split()) for m in model_input["messages"])
        completion = len(reply.split())
        return {"id": "chatcmpl-e2e", "object": "chat.completion", "created": 1700000000,
                "model": "echo",
                "choices": [{"index": 0, "message": {"role": "assistant", "content": reply},
                             "finish_reason": "stop"}],
                "usage": {"prompt_tokens": prompt, "completion_tokens": completion,
                          "total_tokens": prompt + completion}}


mlflow.models.set_model(EchoChat())
'''

# One client process of the concurrent load test: waits for a common start time, sends its
# requests from a few threads, prints one JSON line per answer.
LOAD_CLIENT = r'''
import json, sys, time
from concurrent.futures import ThreadPoolExecutor
import httpx
url, token, name, n, start = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), float(sys.argv[5])
body = {"messages": [{"role": "user", "content": "hello there"}]}
with httpx.Client(base_url=url, headers={"Authorization": "Bearer " + token}, timeout=60) as c:
    c.get("/health")
    def one(i):
        r = c.post(f"/serving-endpoints/{name}/invocations", json=body)
        return {"status": r.status_code, "retry_after": r.headers.get("retry-after"),
                "code": r.json().get("error_code") if r.status_code != 200 else None, "t": time.time()}
    while time.time() < start:
        time.sleep(0.001)
    with ThreadPoolExecutor(4) as pool:
        for res in pool.map(one, range(n)):
            print(json.dumps(res), flush=True)
'''


def burst(server: LadleServer, token: str, name: str, processes: int, per_process: int) -> tuple[float, list[dict]]:
    """Send processes x per_process requests at once from separate processes; returns the
    common start time and every answer."""
    start = time.time() + 2.0
    procs = [subprocess.Popen([sys.executable, "-c", LOAD_CLIENT, server.url, token, name, str(per_process),
                               repr(start)], stdout=subprocess.PIPE, text=True) for _ in range(processes)]
    results: list[dict] = []
    for p in procs:
        out, _ = p.communicate(timeout=120)
        assert p.returncode == 0
        results += [json.loads(line) for line in out.splitlines() if line.strip()]
    return start, results


def user_token(http, name: str, service_principal: bool = False) -> str:
    body = {"application_id": name} if service_principal else {"user_name": name}
    r = http.post("/api/2.0/token-management/on-behalf-of/tokens", json=body)
    assert r.status_code == 200, r.text
    return r.json()["token_value"]


def put_gateway(http, body: dict[str, Any], name: str = ENDPOINT) -> dict:
    r = http.put(f"/api/2.0/serving-endpoints/{name}/ai-gateway", json=body)
    assert r.status_code == 200, r.text
    return r.json()


def metric_total(http, metric: str, name: str = ENDPOINT) -> float:
    text = http.get(f"/api/2.0/serving-endpoints/{name}/metrics").text
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith(metric + "{") or line.startswith(metric + " "))


@pytest.fixture(scope="module")
def gw_admin(server):
    with client(server, timeout=60) as c:
        yield c


@pytest.fixture(scope="module")
def chat_model(server, tmp_path_factory):
    register_code_model(server.url, server.admin_token, CHAT_MODEL, CHAT_MODEL_CODE,
                        tmp_path_factory.mktemp("gw-model"))
    return CHAT_MODEL


@pytest.fixture(scope="module")
def chat_endpoint(gw_admin, chat_model):
    """`gw-chat`: entity `flaky` (all traffic; fails on 'FAIL') and `backup` (0%: fallback only)."""
    common = {"entity_name": chat_model, "entity_version": "1", "workload_size": "Small",
              "scale_to_zero_enabled": False}
    ep = create_endpoint(gw_admin, {"name": ENDPOINT, "config": {
        "served_entities": [{**common, "name": "flaky", "environment_vars": {"GW_FLAKY": "1"}},
                            {**common, "name": "backup"}],
        "traffic_config": {"routes": [{"served_entity_name": "flaky", "traffic_percentage": 100},
                                      {"served_entity_name": "backup", "traffic_percentage": 0}]}}},
        timeout=240)
    r = gw_admin.patch(f"/api/2.0/permissions/serving-endpoints/{ep['id']}", json={"access_control_list": [
        {"group_name": "users", "permission_level": "CAN_QUERY"}]})          # every principal may query
    assert r.status_code == 200, r.text
    yield ep
    gw_admin.delete(f"/api/2.0/serving-endpoints/{ENDPOINT}")
