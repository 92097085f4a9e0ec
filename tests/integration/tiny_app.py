"""A tiny stdlib HTTP app for the app runner and proxy tests: GET answers what it saw (path,
headers, its uid, whether it can read a file of the server's), POST echoes the body reversed,
GET /exit kills it."""

from __future__ import annotations

import asyncio
import textwrap
from pathlib import Path

import httpx
import pytest

from ladle.runtimes.app_runner import AppRunner
from ladle.runtimes.sandbox import make_sandbox
from ladle.schemas.apps import AppLaunch

APP = textwrap.dedent("""
    import ctypes, json, os, sys
    from http.server import BaseHTTPRequestHandler, HTTPServer

    def probe(path):
        try:
            with open(path) as f:
                return f.read()
        except OSError as e:
            return type(e).__name__

    class H(BaseHTTPRequestHandler):
        def do_GET(self):
            if self.path == "/exit":
                os._exit(1)
            body = json.dumps({"path": self.path, "version": os.environ.get("VERSION"),
                               "headers": {k.lower(): v for k, v in self.headers.items()},
                               "uid": os.getuid(), "home_probe": probe(os.environ["PROBE"]),
                               "dumpable": ctypes.CDLL(None).prctl(3, 0, 0, 0, 0),
                               "secret": os.environ.get("DATABRICKS_CLIENT_SECRET")}).encode()
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_POST(self):
            data = self.rfile.read(int(self.headers.get("content-length") or 0))
            self.send_response(302 if self.path == "/redirect" else 201)
            self.send_header("location", "/after")
            self.send_header("set-cookie", "app_cookie=1; Path=/")
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data[::-1])

        def log_message(self, *a):
            print("request", self.path, flush=True)

    print("app starting on", os.environ["DATABRICKS_APP_PORT"], flush=True)
    HTTPServer(("127.0.0.1", int(os.environ["DATABRICKS_APP_PORT"])), H).serve_forever()
""")


def make_source(root: Path, name: str, app: str = APP, requirements: str | None = "") -> Path:
    src = root / "apps" / "demo" / "deployments" / name / "source"
    src.mkdir(parents=True)
    (src / "app.py").write_text(app)
    if requirements is not None:
        (src / "requirements.txt").write_text(requirements)
    return src




@pytest.fixture
async def runner(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    (home / "server-secret.txt").write_text("TOPSECRET")
    sandbox = make_sandbox("auto", "ladle-worker", home)
    r = AppRunner(sandbox, home / "apps", home / "envs" / "apps", home / "run", start_timeout_s=20,
                  backoff_s=0.2, backoff_max_s=1.0, stable_s=30)
    (home / "run").mkdir()
    r.home = home
    yield r
    await r.close()


def launch(runner, dep: str, **kw) -> AppLaunch:
    src = kw.pop("source", None) or make_source(runner.home, dep)
    env = {"VERSION": dep, "PROBE": str(runner.home / "server-secret.txt"), "DATABRICKS_CLIENT_SECRET": "s3cret",
           **kw.pop("env", {})}
    return AppLaunch("demo", dep, src, kw.pop("command", ["python", "app.py"]), env)


async def get(runner, path="/"):
    async with httpx.AsyncClient() as c:
        return await c.get(f"http://127.0.0.1:{runner.port('demo')}{path}")


async def until(cond, timeout=20.0):
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not cond():
        assert loop.time() < end, "condition not met in time"
        await asyncio.sleep(0.05)
