"""Autoscaling on real replica processes: a scale-to-zero entity with a 0-8 concurrency range
(1-2 replicas of 4) scales up under a bounded loopback load and back down when it ends, goes
to zero when idle, and its next load wakes it to one replica and scales it again, with no
failed request; an update-config during scaling ends in the new config's range; a
provisioned-throughput LLM (the tiny test model) is measured once and rescales with its model
units without dropping a stream. The e2e server's knobs are small (conftest: target 1 in-flight per replica,
1 s up window, 3 s down window and cool-down, 3 s scale-to-zero idle)."""

from __future__ import annotations

import re
import threading

import httpx

import pytest

from e2e_support import client, create_endpoint, entity, wait_for, wait_settled

NAME = "autoscaled"
ENTITY = "iris-1"
TINY = "e2e_autoscale_tiny"


class Load:
    """`threads` clients querying in a loop until stopped; every status is kept."""

    def __init__(self, server, body: dict, threads: int = 6, name: str = NAME) -> None:
        self.server, self.body, self.name = server, body, name
        self.statuses: list[int | str] = []
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, daemon=True) for _ in range(threads)]

    def _run(self) -> None:
        with client(self.server, timeout=60.0) as c:
            while not self._stop.is_set():
                try:
                    r = c.post(f"/serving-endpoints/{self.name}/invocations", json=self.body)
                    whole = not self.body.get("stream") or r.text.endswith("data: [DONE]\n\n")
                    self.statuses.append(r.status_code if r.status_code == 200 and whole
                                         else f"{r.status_code} {r.text[-200:]}")
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


def gauge(admin: httpx.Client, metric: str, name: str = NAME, ent: str = ENTITY) -> float:
    text = admin.get(f"/api/2.0/serving-endpoints/{name}/metrics").text
    m = re.search(rf'^{metric}{{served_entity="{ent}"}} (\S+)$', text, re.M)
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
        # woken at one replica, then scaled by the load like the first time
        assert logs().count("autoscale: scaling up: 1 -> 2 replicas (in-flight") == 2
        assert woken.statuses and all(s == 200 for s in woken.statuses), set(map(str, woken.statuses)) - {"200"}
        assert max(gauge(admin, "replica_count"), len(server.replica_procs(ep["id"]))) <= 2   # never above the range
    finally:
        admin.delete(f"/api/2.0/serving-endpoints/{NAME}")


def test_update_config_during_scaling_ends_in_the_new_range(server, admin, models, sample):
    body = {"dataframe_records": sample.to_dict(orient="records")}
    name = NAME + "-upd"
    create_endpoint(admin, {"name": name, "config": {"served_entities": [
        entity("1", workload_size=None, min_provisioned_concurrency=0, max_provisioned_concurrency=8)]}}, timeout=240)
    try:
        with Load(server, body, name=name) as load:
            wait_for(lambda: gauge(admin, "replica_target_count", name) == 2, 30, what="scaling up to 2")
            r = admin.put(f"/api/2.0/serving-endpoints/{name}/config", json={"served_entities": [
                entity("1", workload_size=None, min_provisioned_concurrency=4, max_provisioned_concurrency=4)]})
            assert r.status_code == 200, r.text
            ep = wait_settled(admin, name, timeout=120)
            assert ep["state"] == {"ready": "READY", "config_update": "NOT_UPDATING"}, ep["state"]
            assert ep["config"]["config_version"] == 2
            # the new range is one replica (4 of 4): under the same load it stays there
            wait_for(lambda: gauge(admin, "replica_count", name) == 1, 30, what="the new config's one replica")
            served = len(load.statuses)
            wait_for(lambda: len(load.statuses) >= served + 12, 30, what="requests served on the new config")
            assert gauge(admin, "replica_target_count", name) == 1 and gauge(admin, "replica_count", name) == 1
        assert load.statuses and all(s == 200 for s in load.statuses), set(map(str, load.statuses)) - {"200"}
    finally:
        admin.delete(f"/api/2.0/serving-endpoints/{name}")


def test_provisioned_throughput_is_measured_and_units_rescale_without_dropping_streams(
        server, admin, tmp_path_factory, databricks_env):
    pytest.importorskip("torch", reason="the tiny LLM needs the llm extra")
    pytest.importorskip("transformers", reason="the tiny LLM needs the llm extra")
    from databricks.sdk import WorkspaceClient
    from databricks.sdk.service.serving import PtEndpointCoreConfig, PtServedModel

    from llm_fixtures import build_tiny_chat_model

    tiny = build_tiny_chat_model(tmp_path_factory.mktemp("as-tiny") / "tiny")
    r = admin.post("/api/2.0/ladle/foundation-models/add-local", json={"path": str(tiny), "name": TINY,
                                                                        "task": "llm/v1/chat"})
    assert r.status_code == 200, r.text
    name, ent = "as-pt", f"{TINY}-1"
    w = WorkspaceClient()

    def units(n: int) -> PtEndpointCoreConfig:
        return PtEndpointCoreConfig(served_entities=[PtServedModel(
            entity_name=f"system.ai.{TINY}", entity_version="1", provisioned_model_units=n)])

    w.serving_endpoints.create_provisioned_throughput_endpoint(name=name, config=units(1))
    try:
        ep = wait_settled(admin, name, timeout=240)
        assert ep["state"]["ready"] == "READY", ep
        shown = lambda: admin.get(f"/api/2.0/serving-endpoints/{name}").json()["config"]["served_entities"][0]
        wait_for(lambda: "ladle_tokens_per_second_per_replica" in shown(), 60, what="the measured throughput")
        tps = shown()["ladle_tokens_per_second_per_replica"]
        assert tps > 0
        stream = {"messages": [{"role": "user", "content": "hello"}], "max_tokens": 48, "stream": True}
        with Load(server, stream, threads=3, name=name) as load:
            w.serving_endpoints.update_provisioned_throughput_endpoint_config(name=name, config=units(2))
            wait_for(lambda: gauge(admin, "replica_count", name, ent) == 2, 60, what="two units: two replicas")
            w.serving_endpoints.update_provisioned_throughput_endpoint_config(name=name, config=units(1))
            wait_for(lambda: gauge(admin, "replica_count", name, ent) == 1, 60, what="one unit: one replica")
            served = len(load.statuses)
            wait_for(lambda: len(load.statuses) >= served + 3, 30, what="streams after the rescale")
        assert load.statuses and all(s == 200 for s in load.statuses), set(map(str, load.statuses)) - {"200"}
        # a throughput range maps through the measured tokens/s: just over one replica's is two
        r = admin.put(f"/api/2.0/serving-endpoints/{name}/config", json={"served_entities": [{
            "entity_name": f"system.ai.{TINY}", "entity_version": "1", "min_provisioned_throughput": int(tps) + 1,
            "max_provisioned_throughput": int(tps) + 1}]})
        assert r.status_code == 200, r.text
        wait_for(lambda: gauge(admin, "replica_target_count", name, ent) == 2, 60, what="a 2-replica range")
        assert shown()["ladle_tokens_per_second_per_replica"] == tps   # measured once per model
    finally:
        admin.delete(f"/api/2.0/serving-endpoints/{name}")
