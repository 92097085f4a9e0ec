"""`registry_eager` (set by `ladle server --demo`): the embedded registry's process starts with
the server, before any MLflow call, and stops with it."""

from __future__ import annotations

import time

import psutil
from starlette.testclient import TestClient

from ladle.app import build_app
from ladle.config import Settings
from tests.integration.conftest import ADMIN


def _registry_children(home) -> list[psutil.Process]:
    """This test's registry process (another module's server may have its own)."""
    out = []
    for p in psutil.Process().children(recursive=True):
        try:
            cmd = " ".join(p.cmdline())
            if "ladle.runtimes.mlflow_gate" in cmd and str(home) in cmd:
                out.append(p)
        except psutil.Error:
            pass
    return out


def _app(tmp_path, eager: bool):
    settings = Settings(home=tmp_path / "home", cache_dir=tmp_path / "cache", admin_token=ADMIN,
                        gateway_workers=1, registry_eager=eager)
    return build_app(settings)


def test_an_eager_registry_starts_with_the_server(tmp_path):
    with TestClient(_app(tmp_path, True)) as c:
        assert c.get("/health").status_code == 200
        deadline = time.monotonic() + 30
        while not _registry_children(tmp_path) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _registry_children(tmp_path)
    assert not _registry_children(tmp_path)     # stopped with the server

