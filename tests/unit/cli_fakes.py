"""A recording HTTP server and a CLI runner, imported by the CLI tests (this module holds no tests).

The server answers canned replies per (method, path) and records what it received, so the
tests assert both what the CLI sends and what it prints.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner, Result

TOKEN = "dapi-test-token"


@dataclass
class Reply:
    status: int = 200
    body: Any = None  # dict/list -> JSON; str/bytes -> raw
    content_type: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    sse: list[str] | None = None  # SSE event payloads, sent one by one with a flush
    delay_s: float = 0.0

    def encoded(self) -> tuple[bytes, str]:
        if isinstance(self.body, (dict, list)):
            return json.dumps(self.body).encode(), self.content_type or "application/json"
        if isinstance(self.body, str):
            return self.body.encode(), self.content_type or "text/plain; charset=utf-8"
        if isinstance(self.body, bytes):
            return self.body, self.content_type or "application/octet-stream"
        return b"", self.content_type or "application/json"


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


class RecordingServer:
    def __init__(self) -> None:
        self.requests: list[Recorded] = []
        self._routes: dict[tuple[str, str], list[Reply]] = {}
        self._lock = threading.Lock()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _make_handler(self))
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def on(self, method: str, path: str, *replies: Reply) -> None:
        """Queue replies for a route; the last one repeats."""
        self._routes[(method, path)] = list(replies)

    def next_reply(self, method: str, path: str) -> Reply:
        with self._lock:
            queue = self._routes.get((method, path))
            if not queue:
                return Reply(404, {"error_code": "NOT_FOUND", "message": f"no route {method} {path}"})
            return queue.pop(0) if len(queue) > 1 else queue[0]

    def calls(self, method: str | None = None, path: str | None = None) -> list[Recorded]:
        return [r for r in self.requests if (method is None or r.method == method) and (path is None or r.path == path)]

    def reset(self) -> None:
        with self._lock:
            self.requests.clear()
            self._routes.clear()

    def start(self) -> RecordingServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()


def _make_handler(server: RecordingServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - silence
            pass

        def _handle(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            headers = {k.lower(): v for k, v in self.headers.items()}
            with server._lock:
                server.requests.append(Recorded(self.command, self.path, headers, body))
            reply = server.next_reply(self.command, self.path)
            if reply.delay_s:
                time.sleep(reply.delay_s)
            if reply.sse is not None:
                self._send_sse(reply)
                return
            payload, content_type = reply.encoded()
            self.send_response(reply.status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(payload)))
            for key, value in reply.headers.items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(payload)

        def _send_sse(self, reply: Reply) -> None:
            self.send_response(reply.status)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Connection", "close")
            self.end_headers()
            for event in reply.sse or []:
                self.wfile.write(f"data: {event}\n\n".encode())
                self.wfile.flush()
            self.close_connection = True

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _handle

    return Handler


@pytest.fixture(scope="session")
def _recording_server() -> Iterator[RecordingServer]:
    srv = RecordingServer().start()
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture
def server(_recording_server: RecordingServer) -> RecordingServer:
    """The shared recording server, with no routes and no recorded requests."""
    _recording_server.reset()
    return _recording_server


def base_env(tmp_path: Path, **extra: str | None) -> dict[str, str | None]:
    """A clean environment: no real ~/.databrickscfg, no inherited DATABRICKS_* settings."""
    env: dict[str, str | None] = {
        "HOME": str(tmp_path),
        "DATABRICKS_CONFIG_FILE": None,
        "DATABRICKS_CONFIG_PROFILE": None,
        "DATABRICKS_HOST": None,
        "DATABRICKS_TOKEN": None,
        "DATABRICKS_OUTPUT_FORMAT": None,
    }
    env.update(extra)
    return env


def run(group: click.Group, args: list[str], env: dict[str, str | None], input: str | None = None) -> Result:
    prog = f"ladle {group.name}"
    return CliRunner().invoke(group, args, env=env, prog_name=prog, input=input, terminal_width=80)


def run_se(args: list[str], server: RecordingServer, tmp_path: Path, **env: str | None) -> Result:
    """Run `ladle serving-endpoints ARGS` against the recording server."""
    from ladle.cli.serving_endpoints import serving_endpoints

    merged = base_env(tmp_path, DATABRICKS_HOST=server.url, DATABRICKS_TOKEN=TOKEN)
    merged.update(env)
    return run(serving_endpoints, args, merged)


def run_tokens(args: list[str], server: RecordingServer, tmp_path: Path, **env: str | None) -> Result:
    from ladle.cli.tokens import tokens

    merged = base_env(tmp_path, DATABRICKS_HOST=server.url, DATABRICKS_TOKEN=TOKEN)
    merged.update(env)
    return run(tokens, args, merged)


def endpoint(name: str = "ep1", config_update: str = "NOT_UPDATING", **extra: Any) -> dict[str, Any]:
    """A Detailed endpoint object as the server would answer it."""
    body = {
        "name": name,
        "id": "0123456789abcdef0123456789abcdef",
        "creator": "alice@example.com",
        "creation_timestamp": 1700000000000,
        "state": {"ready": "READY" if config_update == "NOT_UPDATING" else "NOT_READY", "config_update": config_update},
        "config": {"config_version": 1, "served_entities": [{"name": "m-1", "entity_name": "m", "entity_version": "1"}]},
        "description": "",
        "tags": [],
        "permission_level": "CAN_MANAGE",
        "route_optimized": False,
    }
    body.update(extra)
    return body
