"""The server answers before its MLflow registry is up: a registry call made meanwhile waits
for it, and answers 503 TEMPORARILY_UNAVAILABLE (API error shape, Retry-After) when it does
not come up in time."""

from __future__ import annotations

import asyncio
import http.server
import json
import socket
import threading

from starlette.testclient import TestClient

from ladle.api import mlflow_proxy
from ladle.app import build_app
from ladle.config import Settings
from tests.integration.conftest import ADMIN, FakeRegistry

SEARCH = "/api/2.0/mlflow/registered-models/search"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class _Registry(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        body = json.dumps({"registered_models": [{"name": "late"}]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


def _app(tmp_path, port: int):
    registry = FakeRegistry({})
    registry.tracking_uri = f"http://127.0.0.1:{port}"
    settings = Settings(home=tmp_path, admin_token=ADMIN, reconcile_interval_s=0.05)
    return build_app(settings, registry=registry)


def test_a_registry_call_made_while_the_registry_starts_waits_for_it(tmp_path):
    port = _free_port()
    upstream = http.server.ThreadingHTTPServer(("127.0.0.1", port), _Registry, bind_and_activate=False)
    # Nothing listens on the registry's port when the call is made; it comes up a moment later.
    starter = threading.Timer(0.5, _serve, args=(upstream,))
    with TestClient(_app(tmp_path, port), headers={"Authorization": f"Bearer {ADMIN}"}) as c:
        starter.start()
        try:
            r = c.get(SEARCH)
        finally:
            starter.join()
            upstream.shutdown()
            upstream.server_close()
    assert r.status_code == 200, r.text
    assert r.json() == {"registered_models": [{"name": "late"}]}


def _serve(server: http.server.ThreadingHTTPServer) -> None:
    server.server_bind()
    server.server_activate()
    threading.Thread(target=server.serve_forever, daemon=True).start()


def test_a_registry_that_does_not_come_up_is_a_503_with_retry_after(tmp_path, monkeypatch):
    monkeypatch.setattr(mlflow_proxy, "REGISTRY_WAIT_S", 0.5)
    with TestClient(_app(tmp_path, _free_port()), headers={"Authorization": f"Bearer {ADMIN}"}) as c:
        r = c.get(SEARCH)
        assert r.status_code == 503
        assert r.json()["error_code"] == "TEMPORARILY_UNAVAILABLE"
        assert r.headers["Retry-After"] == "1"
        assert c.get("/api/2.0/serving-endpoints").status_code == 200     # the rest still answers


def test_the_embedded_registry_starts_on_its_first_connection(tmp_path):
    from ladle.runtimes.mlflow_tracking import TrackingServer

    async def run() -> None:
        tracking = TrackingServer(tmp_path / "mlflow", tmp_path / "mlflow.log")
        await tracking.start()
        try:
            await asyncio.sleep(0)            # the loop turns: nothing has connected yet
            assert tracking.proc is None
            _, writer = await asyncio.open_connection("127.0.0.1", tracking.port)   # accepted at once
            for _ in range(200):              # the child is started for it (wait on the condition)
                if tracking.proc is not None:
                    break
                await asyncio.sleep(0.05)
            assert tracking.proc is not None and tracking.proc.returncode is None
            writer.close()
        finally:
            await tracking.stop()
        assert tracking.proc.returncode is not None   # stopped with the server

    asyncio.run(run())
