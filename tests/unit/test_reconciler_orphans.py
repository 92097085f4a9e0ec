"""The reconciler owner hands a shared runtime (Ray) every group key the stored endpoints use
on each pass, so applications of endpoints deleted while no reconciler ran are collected
(the runtime's side: tests/integration/test_ray_backend.py)."""

from __future__ import annotations

import asyncio

from ladle.control.configs import build_config
from ladle.control.reconciler import Reconciler, group_keys
from ladle.control.store import EndpointRecord
from ladle.runtimes.fake import FakeBackend
from ladle.schemas.endpoints import EndpointCoreConfigInput


class Store:
    def __init__(self, recs: list[EndpointRecord]) -> None:
        self.recs = recs

    async def call(self, fn, *args):
        return fn(*args)

    def list_endpoints(self):
        return self.recs

    def save_endpoint(self, rec):
        pass


def record(eid: str, version: str, failed: bool = False) -> EndpointRecord:
    cfg = build_config(EndpointCoreConfigInput.model_validate({"served_entities": [
        {"entity_name": "m", "entity_version": version, "workload_size": "Small"}]}), eid, 1, "u", 0)
    if failed:
        cfg["failed"] = True
    return EndpointRecord(id=eid, name=f"ep-{eid[:4]}", creator="u", created_ms=0, updated_ms=0,
                          active=cfg, pending=None, config_update="NOT_UPDATING")


def test_each_pass_names_the_groups_every_stored_endpoint_uses(tmp_path):
    live, failed = record("a" * 32, "1"), record("b" * 32, "2", failed=True)
    backend = FakeBackend()
    seen: list[set[str]] = []
    backend.collect_orphans = seen.append
    r = Reconciler(Store([live, failed]), backend, lambda *a: None, tmp_path, idle_s=600, interval_s=1.0)
    asyncio.run(r.tick())
    key = live.active["served_entities"][0]["_key"]
    assert seen and all(keys == {key} for keys in seen)
    assert group_keys([live, failed]) == {key} and group_keys([]) == set()
