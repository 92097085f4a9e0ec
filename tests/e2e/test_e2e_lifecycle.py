"""Endpoint lifecycle on real replica processes: traffic split, zero-downtime update under
load, failed builds and failed updates, a killed replica, scale-to-zero.

The tests of this module share the endpoint `life`; each one states the config it needs
(the traffic-split test puts the 50/50 split back when an update ran before it), so they pass
alone and in any order.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections import Counter

import httpx
import psutil
import pytest

from e2e_support import (
    BROKEN_MARKER, client, create_endpoint, entity, replica_pids_from_logs, wait_for,
    wait_settled,
)

EP = "life"


class Load:
    """A few threads querying an endpoint in a loop; every outcome is recorded."""

    def __init__(self, server, name: str, body: dict, threads: int = 3, timeout: float = 60.0) -> None:
        self.server, self.name, self.body, self.timeout = server, name, body, timeout
        self.results: list[tuple[float, int | None, str | None, str]] = []
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, daemon=True) for _ in range(threads)]

    def _run(self) -> None:
        with client(self.server, timeout=self.timeout) as c:
            while not self._stop.is_set():
                t = time.monotonic()
                try:
                    r = c.post(f"/serving-endpoints/{self.name}/invocations", json=self.body)
                    self.results.append((t, r.status_code, r.headers.get("served-model-name"),
                                         "" if r.status_code == 200 else r.text[:300]))
                except httpx.HTTPError as e:
                    self.results.append((t, None, None, repr(e)))

    def __enter__(self) -> "Load":
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(self.timeout + 10)
        assert not any(t.is_alive() for t in self._threads), "a request hung"

    def failures(self) -> list:
        return [r for r in self.results if r[1] != 200]


SPLIT = {"served_entities": [entity("1"), entity("2")],
         "traffic_config": {"routes": [{"served_model_name": "iris-1", "traffic_percentage": 50},
                                       {"served_model_name": "iris-2", "traffic_percentage": 50}]}}


@pytest.fixture(scope="module")
def life(admin, models):
    """`life`: iris v1 and v2 behind a 50/50 traffic split."""
    ep = create_endpoint(admin, {"name": EP, "config": SPLIT}, timeout=240)
    yield ep
    admin.delete(f"/api/2.0/serving-endpoints/{EP}")


@pytest.fixture()
def split(admin, life):
    """`life` with the 50/50 split, put back if another test updated it."""
    ep = admin.get(f"/api/2.0/serving-endpoints/{EP}").json()
    if sorted(e["name"] for e in ep["config"]["served_entities"]) != ["iris-1", "iris-2"]:
        assert admin.put(f"/api/2.0/serving-endpoints/{EP}/config", json=SPLIT).status_code == 200
        ep = wait_settled(admin, EP, timeout=240)
        assert ep["state"] == {"ready": "READY", "config_update": "NOT_UPDATING"}, ep["state"]
    return ep


@pytest.fixture(scope="module")
def records(sample) -> dict:
    return {"dataframe_records": sample.to_dict(orient="records")}


def test_traffic_split_50_50_in_served_model_name_headers(server, split, records, sample, v1_model, v2_model):
    expected = {"iris-1": v1_model.predict(sample).tolist(), "iris-2": v2_model.predict(sample).tolist()}
    seen: Counter = Counter()
    lock = threading.Lock()

    def worker(n: int) -> None:
        with client(server) as c:
            for _ in range(n):
                r = c.post(f"/serving-endpoints/{EP}/invocations", json=records)
                assert r.status_code == 200, r.text
                name = r.headers["served-model-name"]
                assert r.json()["predictions"] == expected[name]
                with lock:
                    seen[name] += 1

    threads = [threading.Thread(target=worker, args=(75,)) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    total = sum(seen.values())
    assert total == 300, seen
    for name in ("iris-1", "iris-2"):
        assert 0.35 * total <= seen[name] <= 0.65 * total, seen


def test_update_config_under_load_has_zero_failed_requests(server, admin, life, records):
    new = {"served_entities": [entity("1", environment_vars={"E2E_GENERATION": "new"})]}
    version = admin.get(f"/api/2.0/serving-endpoints/{EP}").json()["config"]["config_version"]
    with Load(server, EP, records) as load:
        wait_for(lambda: len(load.results) >= 3, 30, what="the load running")
        r = admin.put(f"/api/2.0/serving-endpoints/{EP}/config", json=new)
        assert r.status_code == 200, r.text
        assert r.json()["state"]["config_update"] == "IN_PROGRESS"
        assert r.json()["pending_config"]["config_version"] == version + 1
        again = admin.put(f"/api/2.0/serving-endpoints/{EP}/config", json=new)
        assert again.status_code == 409 and again.json()["error_code"] == "RESOURCE_CONFLICT", again.text
        ep = wait_settled(admin, EP, timeout=240)
        settled = time.monotonic()
        later = lambda: [r for r in load.results if r[0] > settled]  # noqa: E731
        after = wait_for(lambda: len(later()) >= 5 and later()[:5], 30, what="five queries after the update")
    assert ep["state"] == {"ready": "READY", "config_update": "NOT_UPDATING"}
    assert ep["config"]["config_version"] == version + 1 and "pending_config" not in ep
    assert len(load.results) > 20
    assert load.failures() == []
    assert {r[2] for r in after} == {"iris-1"}


def test_update_to_a_broken_model_fails_and_old_config_keeps_serving(admin, life, records, models):
    before = admin.get(f"/api/2.0/serving-endpoints/{EP}").json()["config"]
    names = [e["name"] for e in before["served_entities"]]
    r = admin.put(f"/api/2.0/serving-endpoints/{EP}/config",
                  json={"served_entities": [{"entity_name": models["broken"], "entity_version": "1"}]})
    assert r.status_code == 200, r.text
    ep = wait_settled(admin, EP, timeout=240)
    assert ep["state"] == {"ready": "READY", "config_update": "UPDATE_FAILED"}, ep["state"]
    assert "pending_config" not in ep
    assert ep["config"]["config_version"] == before["config_version"]
    assert [e["name"] for e in ep["config"]["served_entities"]] == names
    for _ in range(5):
        q = admin.post(f"/serving-endpoints/{EP}/invocations", json=records)
        assert q.status_code == 200 and q.headers["served-model-name"] in names
    build = admin.get(f"/api/2.0/serving-endpoints/{EP}/served-models/broken-1/build-logs")
    logs = admin.get(f"/api/2.0/serving-endpoints/{EP}/served-models/broken-1/logs")
    assert build.status_code == 200 and logs.status_code == 200, (build.text, logs.text)
    assert BROKEN_MARKER in build.json()["logs"] + logs.json()["logs"]
    # A later good update is accepted again.
    r = admin.put(f"/api/2.0/serving-endpoints/{EP}/config", json={"served_entities": [
        entity("1", environment_vars={"E2E_GENERATION": "2"})]})
    assert r.status_code == 200, r.text
    assert wait_settled(admin, EP, timeout=240)["state"] == {"ready": "READY", "config_update": "NOT_UPDATING"}


def test_killed_replica_gives_503_or_success_and_recovers(server, admin, life, records):
    logs = lambda: admin.get(f"/api/2.0/serving-endpoints/{EP}/served-models/iris-1/logs").json()["logs"]
    pids = replica_pids_from_logs(logs())
    live = {p.pid for p in server.replica_procs(life["id"])}
    victim = next(p for p in reversed(pids) if p in live)
    with Load(server, EP, records, timeout=60) as load:
        wait_for(lambda: len(load.results) >= 3, 30, what="the load running")
        killed_at = time.monotonic()
        os.kill(victim, signal.SIGKILL)
        wait_for(lambda: [p for p in replica_pids_from_logs(logs()) if p not in pids], 90,
                 what="a new replica")
        wait_for(lambda: any(r[0] > killed_at + 0.5 and r[1] == 200 for r in load.results[-3:]), 60,
                 what="successful queries after the kill")
    statuses = Counter(r[1] for r in load.results)
    assert set(statuses) <= {200, 503}, (statuses, load.failures()[:5])
    unavailable = [r for r in load.results if r[1] == 503]
    for r in unavailable:
        assert "TEMPORARILY_UNAVAILABLE" in r[3] or "retry" in r[3], r
    assert admin.post(f"/serving-endpoints/{EP}/invocations", json=records).status_code == 200
    assert wait_settled(admin, EP)["state"]["ready"] == "READY"
    assert "exited" in logs() or "restart" in logs()


def test_create_with_a_broken_model_ends_update_failed_with_reason(admin, models):
    name = "broken-ep"
    r = admin.post("/api/2.0/serving-endpoints", json={"name": name, "config": {"served_entities": [
        {"entity_name": models["broken"], "entity_version": "1", "workload_size": "Small"}]}})
    assert r.status_code == 200, r.text
    try:
        ep = wait_settled(admin, name, timeout=240)
        assert ep["state"] == {"ready": "NOT_READY", "config_update": "UPDATE_FAILED"}, ep["state"]
        build = admin.get(f"/api/2.0/serving-endpoints/{name}/served-models/broken-1/build-logs").json()["logs"]
        logs = admin.get(f"/api/2.0/serving-endpoints/{name}/served-models/broken-1/logs").json()["logs"]
        assert BROKEN_MARKER in build + logs
        q = admin.post(f"/serving-endpoints/{name}/invocations", json={"inputs": [[1]]}, timeout=30)
        assert q.status_code >= 400 and q.json()["error_code"]
    finally:
        admin.delete(f"/api/2.0/serving-endpoints/{name}")


def test_scale_to_zero_and_cold_start(server, admin, models, records, sample, v1_model):
    name = "s2z"
    ep = create_endpoint(admin, {"name": name, "config": {"served_entities": [
        entity("1", scale_to_zero_enabled=True)]}}, timeout=240)
    try:
        assert ep["config"]["served_entities"][0]["scale_to_zero_enabled"] is True
        logs = lambda: admin.get(f"/api/2.0/serving-endpoints/{name}/served-models/iris-1/logs").json()["logs"]
        [first] = replica_pids_from_logs(logs())
        # LADLE_SCALE_TO_ZERO_IDLE_S=3 on the e2e server.
        wait_for(lambda: not server.replica_procs(ep["id"]) and not psutil.pid_exists(first), 60,
                 what="scale to zero")
        assert admin.get(f"/api/2.0/serving-endpoints/{name}").json()["state"]["ready"] == "READY"
        r = admin.post(f"/serving-endpoints/{name}/invocations", json=records, timeout=120)
        assert r.status_code == 200, r.text
        assert r.json()["predictions"] == v1_model.predict(sample).tolist()
        [second] = [p for p in replica_pids_from_logs(logs()) if p != first]
        assert second in {p.pid for p in server.replica_procs(ep["id"])}, "the request started a replica"
    finally:
        admin.delete(f"/api/2.0/serving-endpoints/{name}")
