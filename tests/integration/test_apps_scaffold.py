"""The app `ladle apps init --features serving` writes, run for real by `ladle apps run-local`
(behind its header-injecting proxy) against a recording server that plays the workspace: it
queries the endpoint named in .env with the caller's credentials, answers the prediction as a
page and as JSON, and shows PERMISSION_DENIED clearly when the endpoint refuses it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from ladle.testing.process import free_port
from ladle.testing.waiting import wait_until
from tests.unit.cli_fakes import TOKEN, RecordingServer, Reply

EP = "churn"
OPENAPI = {"paths": {f"/serving-endpoints/{EP}/invocations": {"post": {"requestBody": {"content": {
    "application/json": {"schema": {"properties": {"dataframe_records": {"items": {"properties": {
        "tenure": {"type": "number"}, "plan": {"type": "string"}}}}}}}}}}}}}
INVOCATIONS = f"/serving-endpoints/{EP}/invocations"


@pytest.fixture
def fake_workspace() -> Iterator[RecordingServer]:
    srv = RecordingServer().start()
    srv.on("GET", f"/api/2.0/serving-endpoints/{EP}/openapi", Reply(body=OPENAPI))
    srv.on("POST", INVOCATIONS, Reply(body={"predictions": [0.87]}))
    srv.on("GET", "/api/2.0/preview/scim/v2/Me", Reply(body={
        "userName": "ana", "displayName": "Ana", "emails": [{"value": "ana@example.com", "primary": True}]}))
    yield srv
    srv.stop()


@pytest.fixture
def running_app(tmp_path: Path, fake_workspace: RecordingServer) -> Iterator[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DATABRICKS_")}
    env.update(HOME=str(tmp_path), DATABRICKS_HOST=fake_workspace.url, DATABRICKS_TOKEN=TOKEN,
               PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}")
    ladle = [sys.executable, "-c", "from ladle.cli.main import main; main()"]
    subprocess.run([*ladle, "apps", "init", "--name", "churn-app", "--features", "serving",
                    "--set", f"serving.serving-endpoint.name={EP}", "--run", "none"],
                   cwd=tmp_path, env=env, check=True, capture_output=True)
    port, app_port = free_port(), free_port()
    log = (tmp_path / "run-local.log").open("wb")
    proc = subprocess.Popen([*ladle, "apps", "run-local", "--port", str(port), "--app-port", str(app_port)],
                            cwd=tmp_path / "churn-app", env=env, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)
    url = f"http://127.0.0.1:{port}"                     # the proxy, which adds the X-Forwarded-* headers

    def up() -> bool:
        assert proc.poll() is None, (tmp_path / "run-local.log").read_text()
        try:
            return httpx.get(url + "/docs", timeout=1).status_code == 200
        except httpx.TransportError:
            return False

    try:
        wait_until(up, timeout=60)
        yield url
    finally:
        os.killpg(proc.pid, signal.SIGINT)
        proc.wait(20)
        log.close()


def test_the_scaffold_queries_the_endpoint_and_shows_permission_denied(
        running_app: str, fake_workspace: RecordingServer) -> None:
    answer = httpx.get(running_app + "/api/prediction", timeout=30)
    assert answer.status_code == 200, answer.text
    assert answer.json()["response"] == {"predictions": [0.87]}
    (call,) = fake_workspace.calls("POST", INVOCATIONS)
    assert call.json == {"dataframe_records": [{"tenure": 1.0, "plan": "a"}]}   # from the model's signature
    assert call.headers["authorization"] == f"Bearer {TOKEN}"                  # the caller's credentials

    page = httpx.get(running_app + "/", headers={"X-Forwarded-Email": "mallory@example.com"}, timeout=30)
    assert page.status_code == 200 and "0.87" in page.text
    assert "Signed in as ana@example.com" in page.text                          # from /Me, not the caller

    mine = httpx.post(running_app + "/api/prediction", json={"inputs": [[3]]}, timeout=30)
    assert mine.status_code == 200 and fake_workspace.calls("POST", INVOCATIONS)[-1].json == {"inputs": [[3]]}

    fake_workspace.on("POST", INVOCATIONS, Reply(403, {"error_code": "PERMISSION_DENIED",
                                                       "message": "You do not have CAN_QUERY on churn"}))
    denied = httpx.get(running_app + "/api/prediction", timeout=30)
    assert denied.status_code == 403
    assert denied.json()["error_code"] == "PERMISSION_DENIED"
    assert "CAN_QUERY" in denied.json()["hint"]
    page = httpx.get(running_app + "/", timeout=30)
    assert page.status_code == 403
    assert "PERMISSION_DENIED" in page.text and "You do not have CAN_QUERY on churn" in page.text

    fake_workspace.on("POST", INVOCATIONS, Reply(404, {"error_code": "RESOURCE_DOES_NOT_EXIST",
                                                       "message": "Endpoint with name 'churn' does not exist."}))
    hidden = httpx.get(running_app + "/api/prediction", timeout=30)
    assert hidden.status_code == 404 and hidden.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST"
    assert "permission: CAN_QUERY" in hidden.json()["hint"]

    bad = httpx.post(running_app + "/api/prediction", content=b"[1]", timeout=30)
    assert bad.status_code == 400 and json.loads(bad.text)["error_code"] == "INVALID_PARAMETER_VALUE"
