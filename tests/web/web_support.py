"""Helpers for the browser tests: Chromium from Debian, a real `ladle server` subprocess, the
iris model registered with the real MLflow client, and a fake OpenAI-compatible upstream
that streams chat chunks. Nothing runs at import time."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx

from ladle.testing.process import LadleProcess
from ladle.testing.registry import tracking
from ladle.testing.waiting import wait_until

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
REPO_ROOT = Path(__file__).resolve().parents[2]
IRIS = "main.default.iris"
FAKE_REPLY = ["Hello", " from", " the", " fake", " model", "."]
FAKE_USAGE = {"prompt_tokens": 7, "completion_tokens": 6, "total_tokens": 13}


def ensure_chromium() -> str | None:
    """The Chromium binary, installed with apt-get when missing and we are root; else the
    reason it is not there."""
    if os.path.exists(CHROMIUM):
        return None
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        return f"{CHROMIUM} is missing and we are not root to apt-get install chromium"
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for cmd in (["apt-get", "install", "-y", "-q", "chromium"], ["apt-get", "update", "-q"],
                ["apt-get", "install", "-y", "-q", "chromium"]):
        subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=600)
        if os.path.exists(CHROMIUM):
            return None
    return "apt-get install chromium did not provide /usr/bin/chromium"


def sign_in(page, token: str) -> None:
    """Sign in through the form; the UI lands on the endpoints list."""
    from playwright.sync_api import expect

    page.goto("/ui/signin")
    page.get_by_label("Access token").fill(token)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(re.compile(r"/ui/endpoints$"))


def web_server(home: Path, token: str) -> LadleProcess:
    """`ladle server` on a free port with its own LADLE_HOME; metrics history every second,
    so the Metrics tab opens with some."""
    return LadleProcess(home, token, {"LADLE_METRICS_HISTORY_INTERVAL_S": "1"}, cwd=REPO_ROOT)


def prewarm_mlflow(tmp: Path) -> None:
    """Import MLflow and scikit-learn and save one model locally, so that registering later
    is quick; meant to run in a thread while the server starts."""
    import mlflow.sklearn
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    x, y = load_iris(return_X_y=True, as_frame=True)
    mlflow.sklearn.save_model(LogisticRegression(max_iter=300).fit(x, y), str(tmp / "warm"))


def register_iris(server: LadleProcess, versions: int = 2) -> None:
    """Log and register `versions` versions of an iris classifier with the real MLflow client."""
    import mlflow
    import sklearn
    from mlflow.models import infer_signature
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    x, y = load_iris(return_X_y=True, as_frame=True)
    with tracking(server.url, server.admin_token):
        for i in range(versions):
            model = LogisticRegression(C=1.0 / (i + 1), max_iter=300).fit(x, y)
            with mlflow.start_run():
                mlflow.sklearn.log_model(
                    model, name="model", signature=infer_signature(x, model.predict(x)),
                    pip_requirements=[f"scikit-learn=={sklearn.__version__}"], registered_model_name=IRIS)


class FakeChatUpstream:
    """An OpenAI-compatible /chat/completions that streams FAKE_REPLY token by token."""

    def __init__(self) -> None:
        self.requests: list[dict] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802
                body = json.loads(self.rfile.read(int(self.headers.get("content-length", 0))) or b"{}")
                outer.requests.append({"path": self.path, "auth": self.headers.get("authorization"), "body": body})
                if not body.get("stream"):
                    data = json.dumps({"id": "c1", "object": "chat.completion", "created": 0, "model": "tiny",
                                       "choices": [{"index": 0, "finish_reason": "stop", "message": {
                                           "role": "assistant", "content": "".join(FAKE_REPLY)}}],
                                       "usage": FAKE_USAGE}).encode()
                    self.send_response(200)
                    self.send_header("content-type", "application/json")
                    self.send_header("content-length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                    return
                self.send_response(200)
                self.send_header("content-type", "text/event-stream")
                self.end_headers()
                for i, piece in enumerate(FAKE_REPLY):
                    chunk = {"id": "c1", "object": "chat.completion.chunk", "created": 0, "model": "tiny",
                             "choices": [{"index": 0, "delta": {"content": piece}, "finish_reason": None}]}
                    if i == len(FAKE_REPLY) - 1:
                        chunk["choices"][0]["finish_reason"] = "stop"
                        chunk["usage"] = FAKE_USAGE
                    self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
                    self.wfile.flush()
                    time.sleep(0.05)
                self.wfile.write(b"data: [DONE]\n\n")
                self.wfile.flush()

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> "FakeChatUpstream":
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


EP = "iris-ui"
READY_S = 150_000  # ms: first replica start (environment reuse, model load) on a busy machine
BODY = {"dataframe_split": {"columns": ["sepal length (cm)", "sepal width (cm)", "petal length (cm)",
                                        "petal width (cm)"], "data": [[5.1, 3.5, 1.4, 0.2]]}}


def make_endpoint(api: httpx.Client, name: str, entities: list[dict]) -> dict:
    """Create `name` over the API and wait until it is READY and not updating."""
    r = api.post("/api/2.0/serving-endpoints", json={"name": name, "config": {"served_entities": entities}})
    assert r.status_code == 200, r.text

    def settled():
        ep = api.get(f"/api/2.0/serving-endpoints/{name}").json()
        return ep if ep["state"]["config_update"] != "IN_PROGRESS" else None

    ep = wait_until(settled, READY_S / 1000, 0.25, what=f"{name} to settle")
    assert ep["state"] == {"ready": "READY", "config_update": "NOT_UPDATING"}, ep["state"]
    return ep


def iris(version: str, **extra) -> dict:
    return {"entity_name": IRIS, "entity_version": version, "workload_size": "Small",
            "scale_to_zero_enabled": False, **extra}


def external(fake_llm) -> dict:
    return {"name": "tiny", "external_model": {
        "name": "tiny", "provider": "custom", "task": "llm/v1/chat",
        "custom_provider_config": {"custom_provider_url": fake_llm.url,
                                   "bearer_token_auth": {"token_plaintext": "upstream-secret"}}}}


def shot(page, shots: Path, name: str) -> None:
    page.screenshot(path=str(shots / f"{name}.png"), full_page=True)


def field(page, name: str):
    return page.locator(f'[data-field="{name}"]')
