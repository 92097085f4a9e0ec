"""Helpers for the end-to-end tier: the models it registers and small HTTP helpers (the
server process itself is ladle.testing.process.LadleProcess).

Nothing here runs at import time; conftest.py builds the session fixtures from these.
"""

from __future__ import annotations

import contextlib
import re
import secrets
import time
from pathlib import Path
from typing import Any, Iterator

import httpx

from ladle.testing.model_code import broken_model_code
from ladle.testing.process import LADLE_ARGV as SERVER_ARGV, LadleProcess as LadleServer  # noqa: F401
from ladle.testing.waiting import wait_until

IRIS = "main.default.iris"
BROKEN = "main.default.broken"
COLUMNS = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
BROKEN_MARKER = "ladle-e2e: this model is broken on purpose"

BROKEN_MODEL_CODE = broken_model_code(BROKEN_MARKER)


# -- HTTP helpers --------------------------------------------------------------------------
def client(server: LadleServer, token: str | None = None, timeout: float = 30.0) -> httpx.Client:
    return server.client(token, timeout)


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
    return wait_until(pred, timeout, interval, what)


RECONCILER_LINE = "now runs the reconciler"


@contextlib.contextmanager
def server_pair(server: LadleServer, database_url: str, work: Path,
                **env: str) -> Iterator[tuple[LadleServer, LadleServer]]:
    """Two ladle servers as behind a load balancer: one database (`database_url`), one admin
    token, one secret key (what one seals the other unseals), the e2e server's MLflow
    registry, fast resync; `env` adds to their settings. Each logs when it takes the
    reconciler (RECONCILER_LINE)."""
    from cryptography.fernet import Fernet

    shared = {"LADLE_DATABASE_URL": database_url, "LADLE_SECRET_KEY": Fernet.generate_key().decode(),
              "LADLE_MLFLOW_TRACKING_URI": server.url, "LADLE_MLFLOW_TRACKING_TOKEN": server.admin_token,
              "LADLE_FOUNDATION_ENDPOINTS": "false", "LADLE_SYNC_INTERVAL_S": "0.3",
              "LADLE_RECONCILE_INTERVAL_S": "0.3", "LADLE_LOG_LEVEL": "info", **env}
    token = "dapi-pair-admin-" + secrets.token_hex(8)
    a = LadleServer(work / "home-a", token, extra_env=shared)
    b = LadleServer(work / "home-b", token, extra_env=shared)
    a.start()
    b.start()
    try:
        yield a, b
    finally:
        a.stop()
        b.stop()


def gateway_workers(srv: LadleServer) -> list:
    """The gateway worker processes of a server (children running ladle.app_worker)."""
    import psutil

    return [p for p in psutil.Process(srv.proc.pid).children()
            if "ladle.app_worker" in " ".join(p.cmdline())]


@contextlib.contextmanager
def only_serving(keep: str, srv: LadleServer) -> Iterator[None]:
    """Pause every serving process of `srv` but `keep` ("server" or "worker"), so a request
    reaches the one left (processes the test started: SIGSTOP, then SIGCONT)."""
    import os
    import signal

    paused = [w.pid for w in gateway_workers(srv)] if keep == "server" else [srv.proc.pid]
    for pid in paused:
        os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        for pid in paused:
            os.kill(pid, signal.SIGCONT)
