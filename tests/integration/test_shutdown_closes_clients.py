"""Stopping the server closes every HTTP client it opened (the MLflow proxy's included):
no connection pool outlives the app."""

from __future__ import annotations

import httpx
from starlette.testclient import TestClient

from ladle.app import build_app
from ladle.config import Settings
from ladle.runtimes.fake import FakeBackend
from tests.integration.conftest import ADMIN, FakeRegistry


def test_every_http_client_is_closed_on_shutdown(tmp_path, monkeypatch):
    opened: list[httpx.AsyncClient] = []

    class Recorded(httpx.AsyncClient):
        def __init__(self, *args, **kwargs) -> None:
            super().__init__(*args, **kwargs)
            opened.append(self)

    monkeypatch.setattr(httpx, "AsyncClient", Recorded)
    settings = Settings(home=tmp_path, admin_token=ADMIN, reconcile_interval_s=0.05)
    app = build_app(settings, backend=FakeBackend(), registry=FakeRegistry({"m": {"1"}}))
    with TestClient(app, headers={"Authorization": f"Bearer {ADMIN}"}) as c:
        assert c.get("/api/2.0/serving-endpoints").status_code == 200
    assert opened, "the app opened no httpx client: this test checks nothing"
    assert [cl for cl in opened if not cl.is_closed] == []
