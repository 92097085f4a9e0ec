"""Helpers for the end-to-end tier: a real `ladle server` process and small HTTP helpers.

Nothing here runs at import time; conftest.py builds the session fixtures from these.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable

import httpx
import psutil

SERVER_ARGV = [sys.executable, "-c", "from ladle.cli.main import main; main()"]
REPO_ROOT = Path(__file__).resolve().parents[2]

IRIS = "main.default.iris"
BROKEN = "main.default.broken"
COLUMNS = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
BROKEN_MARKER = "ladle-e2e: this model is broken on purpose"

BROKEN_MODEL_CODE = f'''
import mlflow
from mlflow.pyfunc import PythonModel


class Broken(PythonModel):
    def load_context(self, context):
        raise RuntimeError("{BROKEN_MARKER}")

    def predict(self, context, model_input, params=None):
        return model_input


mlflow.models.set_model(Broken())
'''


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LadleServer:
    """`ladle server` as a subprocess in its own session; stopped by PID, children too."""

    def __init__(self, home: Path, admin_token: str, extra_env: dict[str, str] | None = None,
                 port: int | None = None) -> None:
        self.home = home
        self.admin_token = admin_token
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.extra_env = extra_env or {}
        self.out_path = home / "server-process.log"
        self.proc: subprocess.Popen | None = None

    # -- lifecycle ---------------------------------------------------------------------
    def start(self, timeout: float = 150.0, while_starting: Callable[[], object] | None = None) -> None:
        """Start the server and wait until its API and its MLflow registry answer;
        `while_starting` runs meanwhile (e.g. slow imports the tests need anyway)."""
        self.home.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "LADLE_HOME": str(self.home), "LADLE_ADMIN_TOKEN": self.admin_token,
               **self.extra_env}
        for k in ("DATABRICKS_HOST", "DATABRICKS_TOKEN", "MLFLOW_TRACKING_URI", "MLFLOW_TRACKING_TOKEN"):
            env.pop(k, None)
        with open(self.out_path, "ab") as out:
            self.proc = subprocess.Popen(
                [*SERVER_ARGV, "server", "--port", str(self.port)],
                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, env=env,
                cwd=str(REPO_ROOT), start_new_session=True,
            )
        try:
            if while_starting is not None:
                while_starting()
            self._wait_ready(timeout)
        except BaseException:
            self.stop()
            raise

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        headers = {"Authorization": f"Bearer {self.admin_token}"}
        with httpx.Client(base_url=self.url, timeout=90.0) as c:
            health_ok = False
            while time.monotonic() < deadline:
                if self.proc is not None and self.proc.poll() is not None:
                    raise RuntimeError(f"ladle server exited with code {self.proc.returncode}:\n"
                                       f"{self.output()[-4000:]}")
                try:
                    if not health_ok:
                        health_ok = c.get("/health").status_code == 200
                    if health_ok:
                        r = c.get("/api/2.0/mlflow/registered-models/search", headers=headers)
                        if r.status_code == 200:
                            return
                except httpx.HTTPError:
                    pass
                time.sleep(0.5)
        raise RuntimeError(f"ladle server not ready within {timeout:.0f}s:\n{self.output()[-4000:]}")

    def descendants(self) -> list[psutil.Process]:
        if self.proc is None:
            return []
        try:
            return psutil.Process(self.proc.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            return []

    def stop(self, grace: float = 40.0) -> None:
        """SIGTERM the server (it drains and stops its replicas and MLflow), then SIGKILL
        whatever it started that is still alive."""
        if self.proc is None:
            return
        kids = self.descendants()
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(grace)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(self.proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                self.proc.wait(10)
        _, alive = psutil.wait_procs(kids, timeout=5)
        for p in alive:
            try:
                p.kill()
            except psutil.NoSuchProcess:
                pass
        psutil.wait_procs(alive, timeout=5)
        self.proc = None

    def restart(self) -> None:
        self.stop()
        self.start()

    # -- observation -------------------------------------------------------------------
    def output(self) -> str:
        try:
            return self.out_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def replica_procs(self, endpoint_id: str | None = None) -> list[psutil.Process]:
        """Live replica worker processes serving a model (of one endpoint, if given).

        A replica is known by its command line, or, for a pre-warmed spare that was handed
        a model, by the endpoint's log file it writes to (logs/<endpoint id>/...) or its
        socket (named after the first 12 characters of the endpoint id)."""
        out = []
        for p in self.descendants():
            try:
                cmd = " ".join(p.cmdline())
                if "ladle.replica.worker" not in cmd or p.status() == psutil.STATUS_ZOMBIE:
                    continue
                marks = [cmd] + [f.path for f in p.open_files()]
                marks += [c.laddr for c in p.net_connections(kind="unix") if isinstance(c.laddr, str)]
            except psutil.Error:
                continue
            if endpoint_id is None:
                if "--standby" not in cmd or any("/logs/" in m for m in marks[1:]):
                    out.append(p)
            elif any(f"/{endpoint_id}/" in m or f"/{endpoint_id[:12]}-" in m for m in marks):
                out.append(p)
        return out


# -- HTTP helpers --------------------------------------------------------------------------
def client(server: LadleServer, token: str | None = None, timeout: float = 30.0) -> httpx.Client:
    tok = server.admin_token if token is None else token
    headers = {"Authorization": f"Bearer {tok}"} if tok else {}
    return httpx.Client(base_url=server.url, headers=headers, timeout=timeout)


def wait_settled(http: httpx.Client, name: str, timeout: float = 120.0) -> dict[str, Any]:
    """Poll GET until config_update is no longer IN_PROGRESS; return the endpoint."""
    deadline = time.monotonic() + timeout
    while True:
        r = http.get(f"/api/2.0/serving-endpoints/{name}")
        assert r.status_code == 200, r.text
        ep = r.json()
        if ep["state"]["config_update"] != "IN_PROGRESS":
            return ep
        if time.monotonic() > deadline:
            raise AssertionError(f"endpoint {name} still updating after {timeout}s: {ep}")
        time.sleep(0.5)


def create_endpoint(http: httpx.Client, body: dict[str, Any], timeout: float = 120.0) -> dict[str, Any]:
    """Create an endpoint and wait until it is NOT_UPDATING (fail loudly otherwise)."""
    r = http.post("/api/2.0/serving-endpoints", json=body)
    assert r.status_code == 200, r.text
    ep = wait_settled(http, body["name"], timeout)
    assert ep["state"]["config_update"] == "NOT_UPDATING", ep
    return ep


def delete_endpoint(http: httpx.Client, name: str) -> None:
    http.delete(f"/api/2.0/serving-endpoints/{name}")


def entity(version: str, name: str | None = None, **extra: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"entity_name": "main.default.iris", "entity_version": version,
                           "workload_size": "Small", "scale_to_zero_enabled": False, **extra}
    if name:
        out["name"] = name
    return out


def replica_pids_from_logs(logs: str) -> list[int]:
    return [int(m) for m in re.findall(r"replica pid (\d+) ready", logs)]


def wait_for(pred, timeout: float, interval: float = 0.25, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while True:
        value = pred()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)
