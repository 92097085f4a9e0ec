"""A pay-per-token endpoint stays FOUNDATION_MODEL_API across config updates (the planner's
scale-from-zero rule keys on it); other endpoints take their type from what they serve."""

from __future__ import annotations

import asyncio

from ladle.control.endpoints import EndpointService
from ladle.control.permissions import PermissionService
from ladle.control.store import Store
from ladle.entities.registry import ModelVersion, Registry
from ladle.schemas import endpoints as s
from ladle.schemas.principal import Principal

ADMIN = Principal("admin", is_admin=True)


class OneModel(Registry):
    def __init__(self) -> None:
        super().__init__("http://registry.invalid", None)

    async def get_version(self, name, version, field="entity_name"):
        return ModelVersion(name, str(version), "models:/x", None, "READY")


def _service(tmp_path) -> tuple[Store, EndpointService]:
    store = Store(f"sqlite:///{tmp_path / 'state.db'}")

    async def changed() -> None:
        return None

    return store, EndpointService(store, PermissionService(store), OneModel(), changed)


def _cfg(version: str = "1") -> s.EndpointCoreConfigInput:
    return s.EndpointCoreConfigInput(served_entities=[s.ServedEntityInput(
        entity_name="m", entity_version=version, workload_size="Small", scale_to_zero_enabled=True)])


async def _settle(store: Store, name: str) -> None:
    # the reconciler would promote the pending config; here the test does it, as stored
    rec = await store.call(store.get_endpoint, name)
    rec.active, rec.pending, rec.config_update = rec.pending, None, "NOT_UPDATING"
    await store.call(store.save_endpoint, rec)


def test_foundation_type_survives_a_config_update(tmp_path):
    store, svc = _service(tmp_path)

    async def run() -> tuple[str, str]:
        out = await svc.create(ADMIN, s.CreateEndpointRequest(name="ppt", config=_cfg()),
                               meta_extra={"endpoint_type": "FOUNDATION_MODEL_API"})
        await _settle(store, "ppt")
        updated = await svc.update_config(ADMIN, "ppt", _cfg("2"))
        return out["endpoint_type"], updated["endpoint_type"]

    try:
        assert asyncio.run(run()) == ("FOUNDATION_MODEL_API", "FOUNDATION_MODEL_API")
    finally:
        store.close()


def test_custom_endpoint_stays_custom(tmp_path):
    store, svc = _service(tmp_path)

    async def run() -> str:
        await svc.create(ADMIN, s.CreateEndpointRequest(name="c", config=_cfg()))
        await _settle(store, "c")
        return (await svc.update_config(ADMIN, "c", _cfg("2")))["endpoint_type"]

    try:
        assert asyncio.run(run()) == "CUSTOM_MODEL"
    finally:
        store.close()
