"""Autoscaling on real replica processes: a scale-to-zero entity with a 0-8 concurrency range
(1-2 replicas of 4) scales up under a bounded loopback load and back down when it ends, goes
to zero when idle, and its next load wakes it to one replica and scales it again, with no
failed request. The e2e server's knobs are small (conftest: target 1 in-flight per replica,
1 s up window, 3 s down window and cool-down, 3 s scale-to-zero idle)."""

from __future__ import annotations

import re
import threading

import httpx

from e2e_support import client, create_endpoint, entity, wait_for

NAME = "autoscaled"
ENTITY = "iris-1"


class Load:
    """`threads` clients querying in a loop until stopped; every status is kept."""

    def __init__(self, server, body: dict, threads: int = 6) -> None:
        self.server, self.body = server, body
        self.statuses: list[int | str] = []
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, daemon=True) for _ in range(threads)]

    def _run(self) -> None:
        with client(self.server, timeout=60.0) as c:
            while not self._stop.is_set():
                try:
                    r = c.post(f"/serving-endpoints/{NAME}/invocations", json=self.body)
                    self.statuses.append(r.status_code if r.status_code == 200 else f"{r.status_code} {r.text[:200]}")
                except httpx.HTTPError as e:
                    self.statuses.append(repr(e))

    def __enter__(self) -> "Load":
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(70)
        assert not any(t.is_alive() for t in self._threads), "a request hung"


def gauge(admin: httpx.Client, metric: str) -> float:
    text = admin.get(f"/api/2.0/serving-endpoints/{NAME}/metrics").text
    m = re.search(rf'^{metric}{{served_entity="{ENTITY}"}} (\S+)$', text, re.M)
    return float(m.group(1)) if m else -1.0


def test_entity_scales_up_and_down_within_its_range_and_wakes_from_zero(server, admin, models, sample):
    body = {"dataframe_records": sample.to_dict(orient="records")}
    ep = create_endpoint(admin, {"name": NAME, "config": {"served_entities": [
        entity("1", workload_size=None, min_provisioned_concurrency=0, max_provisioned_concurrency=8,
               scale_to_zero_enabled=True)]}}, timeout=240)
    logs = lambda: admin.get(f"/api/2.0/serving-endpoints/{NAME}/served-models/{ENTITY}/logs").json()["logs"]
    try:
        assert gauge(admin, "replica_count") == 1
        with Load(server, body) as load:
            wait_for(lambda: gauge(admin, "replica_count") == 2, 60, what="scaled up to 2")
            assert len(server.replica_procs(ep["id"])) == 2
            assert "autoscale: scaling up: 1 -> 2 replicas (in-flight" in logs()
        with Load(server, body, threads=1) as trickle:   # the load fades (and keeps it from zero)
            wait_for(lambda: gauge(admin, "replica_count") == 1 and len(server.replica_procs(ep["id"])) == 1,
                     30, what="scaled back down to 1")
            assert "autoscale: scaling down: 2 -> 1 replicas" in logs()
            wait_for(lambda: gauge(admin, "replica_target_count") == 1, 5, what="the target gauge")
        for run in (load, trickle):
            assert run.statuses and all(s == 200 for s in run.statuses), set(map(str, run.statuses)) - {"200"}

        wait_for(lambda: not server.replica_procs(ep["id"]), 60, what="scaled to zero when idle")
        with Load(server, body) as woken:
            wait_for(lambda: gauge(admin, "replica_count") == 2, 90, what="woken and scaled up to 2")
        assert woken.statuses and all(s == 200 for s in woken.statuses), set(map(str, woken.statuses)) - {"200"}
        assert max(gauge(admin, "replica_count"), len(server.replica_procs(ep["id"]))) <= 2   # never above the range
    finally:
        admin.delete(f"/api/2.0/serving-endpoints/{NAME}")
