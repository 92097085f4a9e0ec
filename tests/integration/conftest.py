"""In-process app with the fake replica backend and a fake registry (no processes)."""

from __future__ import annotations

import time

import pytest
from starlette.testclient import TestClient

from ladle.app import build_app
from ladle.config import Settings
from ladle.entities.registry import ModelVersion, Registry
from ladle.runtimes.fake import FakeBackend
from ladle.schemas.errors import invalid

ADMIN = "admin-token-for-tests"


class FakeRegistry(Registry):
    def __init__(self, models: dict[str, set[str]]) -> None:
        super().__init__("http://registry.invalid", None)
        self.models = models

    async def get_version(self, name, version, field="entity_name"):
        if name not in self.models or str(version) not in self.models[name]:
            raise invalid(f"{field}: model '{name}' version '{version}' does not exist in the registry")
        return ModelVersion(name, str(version), "models:/x", None, "READY")


@pytest.fixture
def backend():
    return FakeBackend()


@pytest.fixture
def client(tmp_path, backend):
    settings = Settings(home=tmp_path, admin_token=ADMIN, reconcile_interval_s=0.05)
    app = build_app(settings, backend=backend, registry=FakeRegistry({"m": {"1", "2"}, "main.default.churn": {"3"}}))
    with TestClient(app, headers={"Authorization": f"Bearer {ADMIN}"}) as c:
        yield c


def wait_not_updating(client, name, timeout=5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        body = client.get(f"/api/2.0/serving-endpoints/{name}").json()
        if body["state"]["config_update"] != "IN_PROGRESS":
            return body
        time.sleep(0.02)
    raise AssertionError(f"{name} still updating: {body}")


def create(client, name="ep", entities=None, traffic=None, **extra):
    cfg = {"served_entities": entities or [{"entity_name": "m", "entity_version": "1"}]}
    if traffic:
        cfg["traffic_config"] = {"routes": traffic}
    r = client.post("/api/2.0/serving-endpoints", json={"name": name, "config": cfg, **extra})
    assert r.status_code == 200, r.text
    return wait_not_updating(client, name)
