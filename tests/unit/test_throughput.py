"""Provisioned throughput: a tokens/s range maps to replicas through one replica's measured
tokens/s; model units are replicas; the measurement is taken once the first replica is
READY, stored in the endpoint's record and shown on its served entity; a new throughput
range (or model units) rescales the same replica group (fake backend, fake clock)."""

from __future__ import annotations

import asyncio
import json

import pytest

from ladle.control.autoscale import Knobs, ScaleRange, scale_range
from ladle.control.configs import build_config
from ladle.control.reconciler import Reconciler
from ladle.control.store import EndpointRecord
from ladle.control.views import detailed
from ladle.runtimes.fake import FakeBackend
from ladle.schemas.endpoints import EndpointCoreConfigInput

EID = "f" * 32


@pytest.mark.parametrize("ent, tps, cap, want", [
    ({"min_provisioned_throughput": 150, "max_provisioned_throughput": 450}, 100.0, 8, ScaleRange(2, 5, 4)),
    ({"min_provisioned_throughput": 0, "max_provisioned_throughput": 100}, 100.0, 8, ScaleRange(1, 1, 4)),
    ({"min_provisioned_throughput": 0, "max_provisioned_throughput": 101}, 100.0, 8, ScaleRange(1, 2, 4)),
    ({"min_provisioned_throughput": 900, "max_provisioned_throughput": 2000}, 100.0, 4, ScaleRange(4, 4, 4)),
    ({"min_provisioned_throughput": 100, "max_provisioned_throughput": 400}, None, 8, ScaleRange(1, 1, 4)),
    ({"provisioned_model_units": 3}, None, 8, ScaleRange(3, 3, 4)),
    ({"provisioned_model_units": 3}, 50.0, 2, ScaleRange(2, 2, 4)),
])
def test_throughput_range_in_replicas(ent, tps, cap, want):
    assert scale_range({"workload_size": "Small", **ent}, cap, 4, tps) == want


def _handler(tokens: int):
    def answer(spec, meta, body):
        req = json.loads(body)
        assert req["max_tokens"] == 32 and req["messages"][0]["role"] == "user"
        return 200, "application/json", json.dumps(
            {"object": "chat.completion", "usage": {"prompt_tokens": 5, "completion_tokens": tokens}}).encode()
    return answer


class Store:
    def __init__(self, rec: EndpointRecord) -> None:
        self.rec = rec

    async def call(self, fn, *args):
        return fn(*args)

    def list_endpoints(self):
        return [self.rec]

    def get_endpoint_by_id(self, endpoint_id):
        return self.rec if endpoint_id == self.rec.id else None

    def save_endpoint(self, rec):
        self.rec = rec


def _config(version: int, **scaling) -> dict:
    return build_config(EndpointCoreConfigInput.model_validate({"served_entities": [
        {"entity_name": "system.ai.tiny", "entity_version": "1", **scaling}]}), EID, version, "u", 0)


def test_measured_once_at_ready_then_the_range_follows_and_an_update_rescales_the_same_group(tmp_path):
    cfg = _config(1, min_provisioned_throughput=20, max_provisioned_throughput=100)
    rec = EndpointRecord(id=EID, name="pt", creator="u", created_ms=0, updated_ms=0, active=cfg, pending=None,
                         config_update="NOT_UPDATING", meta={"task": "llm/v1/chat"})
    now = [0.0]
    backend = FakeBackend(handler=_handler(32), clock=lambda: now[0], latency_s=0.05)
    store = Store(rec)
    r = Reconciler(store, backend, lambda *a: None, tmp_path, idle_s=600, interval_s=1.0, clock=lambda: now[0],
                   cpu_count=8, knobs=Knobs(target_in_flight=3, up_window_s=2, down_window_s=10, cooldown_s=10))
    key = cfg["served_entities"][0]["_key"]

    async def scenario() -> None:
        for _ in range(2):                                     # the group starts, then is READY
            now[0] += 1
            await r.tick()
        g = backend.groups[key]
        assert g.target == 1                                   # not measured yet: one replica
        for _ in range(100):                                   # the calibration runs beside the loop
            if store.rec.meta.get("throughput"):
                break
            await asyncio.sleep(0.02)
        tps = store.rec.meta["throughput"]["system.ai.tiny/1"]
        assert 100 < tps < 32 * 4 / 0.05 * 1.01                # 4 x 32 tokens in ~0.05 s, at most
        shown = detailed(store.rec, "CAN_MANAGE")["config"]["served_entities"][0]
        assert shown["ladle_tokens_per_second_per_replica"] == tps
        # 20-100 tokens/s over > 100 tokens/s per replica: one replica is the whole range
        now[0] += 1
        await r.tick()
        assert backend.groups[key].target == 1
        # a throughput range above what one replica does rescales the same group
        store.rec.meta["throughput"]["system.ai.tiny/1"] = 40.0
        store.rec.active = _config(2, min_provisioned_throughput=100, max_provisioned_throughput=200)
        assert store.rec.active["served_entities"][0]["_key"] == key
        now[0] += 1
        await r.tick()
        assert backend.groups[key].target == 3 and len(backend.groups[key].replicas()) == 3   # ceil(100/40)
        # provisioned model units (a provisioned-throughput endpoint's update) are replicas
        store.rec.active = _config(3, provisioned_model_units=2)
        assert store.rec.active["served_entities"][0]["_key"] == key
        now[0] += 1
        await r.tick()
        assert backend.groups[key].target == 2 and backend.stopped == []
        await r.stop()

    asyncio.run(scenario())


def test_a_model_that_cannot_be_measured_stays_at_one_replica(tmp_path):
    cfg = _config(1, min_provisioned_throughput=100, max_provisioned_throughput=400)
    rec = EndpointRecord(id=EID, name="pt", creator="u", created_ms=0, updated_ms=0, active=cfg, pending=None,
                         config_update="NOT_UPDATING", meta={"task": "llm/v1/chat"})
    backend = FakeBackend(handler=lambda *a: (500, "application/json", b'{"error_code": "INTERNAL_ERROR"}'))
    store = Store(rec)
    r = Reconciler(store, backend, lambda *a: None, tmp_path, idle_s=600, interval_s=1.0, cpu_count=8)

    async def scenario() -> None:
        await r.tick()
        await r.tick()
        for _ in range(100):
            if r.calibrator._failed:
                break
            await asyncio.sleep(0.01)
        await r.tick()
        assert r.calibrator._failed and not r.calibrator._running    # measured once, not retried
        assert "throughput" not in store.rec.meta
        assert backend.groups[cfg["served_entities"][0]["_key"]].target == 1
        assert "ladle_tokens_per_second_per_replica" not in detailed(store.rec, None)["config"]["served_entities"][0]
        await r.stop()

    asyncio.run(scenario())
