"""A model's replicas served from every process (LADLE_GATEWAY_WORKERS=2): a gateway worker
talks to the server's replicas over their sockets, and its requests count as use (a
scale-to-zero entity woken through a worker). Slow tier: it registers a model in the
server's embedded registry and starts replicas (test_e2e_gateway_workers.py covers the
request path with an external model in the default run).

As there, a test that needs one process pauses the other (SIGSTOP/SIGCONT by PID)."""

from __future__ import annotations

import os
import secrets
import signal
from concurrent.futures import ThreadPoolExecutor
from typing import Iterator

import psutil
import pytest

from e2e_support import client, only_serving, wait_for
from ladle.testing.process import LadleProcess
from ladle.testing.registry import register_code_model

ECHO = '''
import mlflow
from mlflow.pyfunc import PythonModel


class Echo(PythonModel):
    def predict(self, context, model_input, params=None):
        return [f"{os.getpid()}:{x}" for x in model_input["x"]]


import os
mlflow.models.set_model(Echo())
'''


@pytest.fixture(scope="module")
def multi(tmp_path_factory) -> Iterator[LadleProcess]:
    srv = LadleProcess(tmp_path_factory.mktemp("ladle-workers-models"), "dapi-wm-" + secrets.token_hex(8),
                       extra_env={"LADLE_GATEWAY_WORKERS": "2", "LADLE_SCALE_TO_ZERO_IDLE_S": "4"})
    srv.start()
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def echo(multi, tmp_path_factory) -> str:
    register_code_model(multi.url, multi.admin_token, "echo", ECHO, tmp_path_factory.mktemp("echo"))
    with client(multi) as admin:
        r = admin.post("/api/2.0/serving-endpoints", json={"name": "echo", "config": {"served_entities": [
            {"entity_name": "echo", "entity_version": "1", "workload_size": "Small",
             "scale_to_zero_enabled": True}]}})
        assert r.status_code == 200, r.text
        wait_for(lambda: admin.get("/api/2.0/serving-endpoints/echo").json()["state"]["ready"] == "READY",
                 180, 0.1, what="echo READY")
    return "echo"


def _predict(srv: LadleProcess, name: str) -> tuple[int, list]:
    with client(srv, timeout=60) as c:
        r = c.post(f"/serving-endpoints/{name}/invocations", json={"dataframe_split": {
            "columns": ["x"], "data": [["a"], ["b"]]}})
        return r.status_code, r.json().get("predictions", r.json())


def _replicas(srv: LadleProcess) -> int:
    with client(srv) as admin:
        text = admin.get("/api/2.0/serving-endpoints/echo/metrics").text
    return int(sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
                   if line.startswith("replica_count{")))


def test_a_worker_and_the_server_get_the_same_answers_from_the_same_replicas(multi, echo):
    assert _predict(multi, echo)[0] == 200      # awake (it may have idled to zero)
    with only_serving("worker", multi):
        via_worker = _predict(multi, echo)
    with only_serving("server", multi):
        via_server = _predict(multi, echo)
    assert via_worker[0] == via_server[0] == 200
    pid = via_worker[1][0].split(":")[0]
    assert via_worker[1] == [f"{pid}:a", f"{pid}:b"] and via_server[1] == via_worker[1]


def test_a_worker_wakes_an_entity_scaled_to_zero(multi, echo):
    wait_for(lambda: _replicas(multi) == 0, 60, 0.25, what="echo scaled to zero")
    worker = next(p for p in psutil.Process(multi.proc.pid).children()
                  if "ladle.app_worker" in " ".join(p.cmdline()))
    with ThreadPoolExecutor(1) as pool:
        os.kill(multi.proc.pid, signal.SIGSTOP)       # the worker alone accepts the request...
        try:
            pending = pool.submit(_predict, multi, echo)
            wait_for(lambda: any(c.laddr and c.laddr.port == multi.port and c.status == psutil.CONN_ESTABLISHED
                                 for c in worker.net_connections("tcp")), 10, 0.02,
                     what="the worker accepting the connection")
        finally:
            os.kill(multi.proc.pid, signal.SIGCONT)   # ...and asks the server to wake the entity
        status, out = pending.result(timeout=120)
    assert status == 200 and [x.split(":")[1] for x in out] == ["a", "b"]
