"""The reconciler applies the autoscaler through the backend: a Medium entity starts at its
range's minimum, scales up under load and down after the cool-down, each decision in the
entity's logs with its reason, in its state message while the replicas move, and in the
endpoint's gauges (fake backend, fake clock)."""

from __future__ import annotations

import asyncio

from prometheus_client import generate_latest

from ladle.control.autoscale import Knobs
from ladle.control.configs import build_config
from ladle.control.reconciler import Reconciler
from ladle.control.store import EndpointRecord
from ladle.runtimes.fake import FakeBackend
from ladle.schemas.endpoints import EndpointCoreConfigInput
from ladle.telemetry.logs import EntityLogs
from ladle.telemetry.metrics import MetricsHub

EID = "e" * 32


class Store:
    def __init__(self, rec: EndpointRecord) -> None:
        self.rec = rec

    async def call(self, fn, *args):
        return fn(*args)

    def list_endpoints(self):
        return [self.rec]

    def save_endpoint(self, rec):
        self.rec = rec


def gauge(hub: MetricsHub, name: str) -> float:
    text = generate_latest(hub.for_endpoint(EID).registry).decode()
    return float(next(line.split()[-1] for line in text.splitlines() if line.startswith(name + "{")))


def test_reconciler_scales_a_medium_entity_with_its_load(tmp_path):
    cfg = build_config(EndpointCoreConfigInput.model_validate({"served_entities": [
        {"entity_name": "m", "entity_version": "1", "workload_size": "Medium"}]}), EID, 1, "u", 0)
    rec = EndpointRecord(id=EID, name="ep", creator="u", created_ms=0, updated_ms=0, active=cfg,
                         pending=None, config_update="NOT_UPDATING")
    now = [1000.0]
    backend, hub = FakeBackend(clock=lambda: now[0]), MetricsHub()
    store = Store(rec)
    r = Reconciler(store, backend, lambda *a: None, tmp_path, idle_s=600, interval_s=1.0,
                   clock=lambda: now[0], cpu_count=8, metrics=hub,
                   knobs=Knobs(target_in_flight=3, up_window_s=2, down_window_s=10, cooldown_s=10))
    key = cfg["served_entities"][0]["_key"]

    async def tick(seconds: int = 1) -> None:
        for _ in range(seconds):
            now[0] += 1
            await r.tick()

    def state_message() -> str:
        return store.rec.active["served_entities"][0]["state"]["deployment_state_message"]

    async def scenario() -> None:
        await tick()
        g = backend.groups[key]
        assert g.target == 2 and len(g.replicas()) == 2          # Medium: 2-4 replicas of 4
        for rep in g.replicas():
            rep.in_flight = 6                                    # 12 in flight: 4 replicas wanted
        real_scale, g.scale = g.scale, lambda: None              # the new replicas take a while
        await tick(2)
        assert g.target == 4 and gauge(hub, "replica_target_count") == 4
        assert state_message() == ("scaling up: 2 -> 4 replicas (in-flight 6.0 per replica over 2 s "
                                   "(target 3))")
        assert gauge(hub, "in_flight_requests") == 12            # the last load seen: 1003 s
        real_scale()                                             # 4 idle replicas
        await tick()
        assert state_message() == "4 replica(s) ready"
        await tick(9)
        assert g.target == 4                     # 1013 s: the 1003 s load is in the 10 s window
        await tick()
        assert g.target == 2 and gauge(hub, "replica_target_count") == 2

    asyncio.run(scenario())
    logs = EntityLogs(tmp_path, EID, "m-1").read_server()
    assert "autoscale: scaling up: 2 -> 4 replicas (in-flight 6.0 per replica over 2 s (target 3))" in logs
    assert "autoscale: scaling down: 4 -> 2 replicas (in-flight at most 0.0 per replica over 10 s" in logs


def test_a_queue_forming_starts_a_pass_at_once_and_a_lasting_one_does_not_repeat_it(tmp_path, monkeypatch):
    """A burst is seen within the queue poll (0.1 s), not at the next interval (60 s here)."""
    from ladle.control import reconciler as mod
    from ladle.runtimes.base import GroupObs
    from ladle.schemas.replicas import GroupState

    monkeypatch.setattr(mod, "QUEUE_POLL_S", 0.01)

    class Queues:
        queued = 0

        def observe(self):
            return {"k": GroupObs(GroupState.READY, "", 1, 1, 4 + self.queued, 0.0, queued=self.queued)}

    backend = Queues()
    r = Reconciler(None, backend, lambda *a: None, tmp_path, idle_s=600, interval_s=60.0)  # type: ignore[arg-type]
    r.leading = True

    async def scenario() -> None:
        watch = asyncio.get_running_loop().create_task(r._watch_queues())
        try:
            await asyncio.sleep(0.1)
            assert not r._wake.is_set()                     # no queue: no extra pass
            backend.queued = 28
            await asyncio.wait_for(r._wake.wait(), 1)       # the burst: a pass now
            r._wake.clear()
            await asyncio.sleep(0.1)
            assert not r._wake.is_set()                     # still queued: nothing more
            backend.queued = 0
            await asyncio.sleep(0.05)
            backend.queued = 5
            await asyncio.wait_for(r._wake.wait(), 1)       # a new queue: a pass again
        finally:
            watch.cancel()
    asyncio.run(scenario())
