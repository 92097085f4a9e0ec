"""The server keeps an hour of each endpoint's request metrics for the web UI's charts:
`GET /api/2.0/ladle/serving-endpoints/{name}/metrics-history` (CAN_VIEW)."""

from __future__ import annotations

import pytest
from starlette.testclient import TestClient

from ladle.app import build_app
from ladle.config import Settings
from ladle.runtimes.fake import FakeBackend
from ladle.telemetry.history import MetricsHistory
from ladle.telemetry.metrics import MetricsHub
from ladle.testing.waiting import wait_until
from tests.integration.conftest import ADMIN, FakeRegistry, create

HISTORY = "/api/2.0/ladle/serving-endpoints/ep/metrics-history"


@pytest.fixture
def client(tmp_path):
    settings = Settings(home=tmp_path, admin_token=ADMIN, reconcile_interval_s=0.05,
                        metrics_history_interval_s=0.1)
    app = build_app(settings, backend=FakeBackend(), registry=FakeRegistry({"m": {"1"}}))
    with TestClient(app, headers={"Authorization": f"Bearer {ADMIN}"}) as c:
        yield c


def test_history_has_the_counters_and_latency_buckets_over_time(client):
    create(client)
    for _ in range(3):
        assert client.post("/serving-endpoints/ep/invocations", json={"inputs": [1]}).status_code == 200

    def two_samples_after_the_calls():
        body = client.get(HISTORY).json()
        counts = [s["value"] for s in body["samples"][-1]["series"] if s["name"] == "request_count_total"] \
            if body["samples"] else []
        return body if len(body["samples"]) >= 2 and counts == [3] else None

    body = wait_until(two_samples_after_the_calls, timeout=10, what="two samples, the last after the calls")
    assert body["interval_s"] == 0.1
    last = body["samples"][-1]
    assert last["t"] > body["samples"][0]["t"]
    by_name = {(s["name"], s["labels"].get("le")): s["value"] for s in last["series"]}
    assert by_name[("request_count_total", None)] == 3
    assert by_name[("request_latency_ms_bucket", "+Inf")] == 3
    assert all(s["labels"]["served_entity"] == "m-1" for s in last["series"])


def test_history_needs_can_view(client):
    create(client)
    r = client.post("/api/2.0/token-management/on-behalf-of/tokens", json={"user_name": "mallory"})
    other = {"Authorization": f"Bearer {r.json()['token_value']}"}
    r = client.get(HISTORY, headers=other)
    assert r.status_code == 404 and r.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST"   # not revealed
    assert client.get(HISTORY).status_code == 200
    assert client.get("/api/2.0/ladle/serving-endpoints/nope/metrics-history").status_code == 404


def test_history_keeps_one_hour():
    hub, now = MetricsHub(), [1000.0]
    hub.for_endpoint("e1").observe("a", 200, 3.0)
    hist = MetricsHistory(hub, interval_s=600, clock=lambda: now[0])
    for _ in range(10):
        hist.sample()
        now[0] += 600
    samples = hist.samples("e1")
    assert len(samples) == 6 and samples[0]["t"] == int((1000 + 4 * 600) * 1000)
    assert hist.samples("unknown") == []


def test_deleted_endpoint_metrics_are_dropped(client):
    hub = client.app.app.state.services.metrics
    eid = create(client)["id"]
    # READY in the API can come a moment before the gateway has the route (then a 404 "not ready")
    wait_until(lambda: client.post("/serving-endpoints/ep/invocations", json={"inputs": [1]}).status_code == 200,
               timeout=10, what="the endpoint served")
    assert eid in dict(hub.items())
    wait_until(lambda: client.get(HISTORY).json()["samples"], timeout=10, what="a history sample")
    assert client.delete("/api/2.0/serving-endpoints/ep").status_code == 200
    wait_until(lambda: eid not in dict(hub.items()), timeout=10, what="the deleted endpoint's metrics dropped")
    # made again under the same name: a new endpoint, with no history of the old one
    create(client)
    # (the new endpoint's own replica gauges may already be sampled; the old request is not)
    assert not [s for sample in client.get(HISTORY).json()["samples"] for s in sample["series"]
                if s["name"] == "request_count_total"]


def test_history_forgets_endpoints_the_hub_dropped():
    hub = MetricsHub()
    hub.for_endpoint("e1").observe("a", 200, 3.0)
    hist = MetricsHistory(hub, interval_s=600)
    hist.sample()
    assert hist.samples("e1")
    hub.retain(set())
    hist.sample()
    assert hist.samples("e1") == []
