"""The endpoint service: validates and records the desired spec; never touches replicas.

Handlers call these methods; every state change after that belongs to the reconciler.
Store calls run on the store's threads (`Store.call`), never on the event loop.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from pathlib import Path
from typing import Any, Awaitable, Callable

from ladle.control.configs import build_config, entities_of
from ladle.control.permissions import PermissionService
from ladle.control.states import ConfigUpdate, check_config_update
from ladle.control.store import EndpointRecord, StaleRecord, Store
from ladle.control.views import detailed, summary
from ladle.entities.catalog import PREFIX, Catalog, check_foundation
from ladle.entities.registry import Registry
from ladle.entities.signature import model_task, signature_inputs
from ladle.schemas import endpoints as s
from ladle.schemas.errors import ApiError, conflict, invalid, not_found
from ladle.schemas.principal import Principal


def _now_ms() -> int:
    return int(time.time() * 1000)


def _dump(m: Any) -> Any:
    if m is None:
        return None
    if isinstance(m, list):
        return [_dump(x) for x in m]
    return m.model_dump(exclude_none=True, mode="json")


class EndpointService:
    def __init__(self, store: Store, perms: PermissionService, registry: Registry,
                 on_change: Callable[[], Awaitable[None]], catalog: Catalog | None = None,
                 seal: Callable[[Any], Any] | None = None,
                 check_secrets: Callable[[Principal, Any], None] | None = None,
                 model_access: Callable[[Principal, str], None] | None = None,
                 models_dir: Path | None = None) -> None:
        self.catalog = catalog          # foundation models (system.ai.*): not in the registry
        self.seal = seal                # encrypts *_plaintext credentials before they are stored
        self.check_secrets = check_secrets  # READ on the scope of every {{secrets/...}} referenced
        self.model_access = model_access    # CAN_READ on every registered model served (else raises)
        self.models_dir = models_dir    # the model cache (LADLE_HOME/models): signatures for OpenAPI
        self.store = store
        self.perms = perms
        self.registry = registry
        self.on_change = on_change
        self._lock = asyncio.Lock()
        self._tasks: dict[tuple[str, str], str] = {}    # (model, version) -> its metadata.task

    # -- reads -------------------------------------------------------------------------
    def _get(self, name: str) -> EndpointRecord:
        rec = self.store.get_endpoint(name)
        if rec is None:
            raise not_found(name)
        return rec

    def authorized(self, p: Principal, name: str, level: str) -> tuple[EndpointRecord, str]:
        rec = self._get(name)
        return rec, self.perms.require(p, rec.id, name, level)

    def get(self, p: Principal, name: str) -> dict[str, Any]:
        rec, lvl = self.authorized(p, name, "CAN_VIEW")
        return detailed(rec, lvl)

    def list(self, p: Principal) -> list[dict[str, Any]]:
        return [summary(r) for r in self.store.list_endpoints() if self.perms.level(p, r.id)]

    async def model_task(self, view: dict[str, Any]) -> str | None:
        """The served MLflow model's `metadata.task` (`agent/v1/responses` for a ResponsesAgent)
        once its files are cached here: read off the event loop once per model version."""
        cfg = view.get("config") or view.get("pending_config") or {}
        ents = [e for e in cfg.get("served_entities") or () if e.get("entity_name") and not e.get("external_model")]
        if self.models_dir is None or not ents:
            return None
        key = (ents[0]["entity_name"], str(ents[0].get("entity_version")))
        if key not in self._tasks:
            task = await asyncio.to_thread(model_task, self.models_dir, *key)
            if task is None:                # not downloaded yet: ask again next time
                return None
            self._tasks[key] = task
        return self._tasks[key] or None

    async def exists(self, name: str) -> bool:
        return await self.store.call(self.store.get_endpoint, name) is not None

    async def ids_at(self, p: Principal, level: str) -> set[str]:
        """The ids of the endpoints on which `p`'s level is exactly `level`."""
        recs = await self.store.call(self.store.list_endpoints)
        return {r.id for r in recs if self.perms.level(p, r.id) == level}

    def model_signature(self, entity: dict[str, Any]) -> list[dict[str, Any]] | None:
        """The input columns of a served model's MLflow signature when its files are cached
        on this machine (reads them: async callers run it on a worker thread)."""
        if self.models_dir is None or not entity.get("entity_name"):
            return None
        return signature_inputs(self.models_dir, entity["entity_name"], str(entity.get("entity_version")))

    # -- writes ------------------------------------------------------------------------
    async def _check_models(self, cfg: s.EndpointCoreConfigInput, p: Principal | None = None) -> None:
        ents, legacy = entities_of(cfg)
        field = "served_models" if legacy else "served_entities"
        for i, e in enumerate(ents):
            if self.catalog is not None and e.entity_name and e.entity_name.startswith(PREFIX):
                check_foundation(self.catalog, e.entity_name, f"config.{field}[{i}].entity_name")
                continue
            if e.external_model is None and e.entity_name:
                if self.model_access is not None and p is not None:
                    self.model_access(p, e.entity_name)     # in memory: PERMISSION_DENIED naming it
                await self.registry.get_version(
                    e.entity_name, e.entity_version,
                    field=f"config.{field}[{i}].{'model_name' if legacy else 'entity_name'}")

    async def _check_secret_refs(self, p: Principal, cfg: s.EndpointCoreConfigInput) -> None:
        if self.check_secrets is not None:
            await self.store.call(self.check_secrets, p, cfg)

    async def create(self, p: Principal, req: s.CreateEndpointRequest, meta_extra: dict | None = None) -> dict:
        if req.config is None:
            raise invalid("config: is required")
        await self._check_models(req.config, p)
        await self._check_secret_refs(p, req.config)
        async with self._lock:
            if await self.store.call(self.store.get_endpoint, req.name) is not None:
                raise ApiError("RESOURCE_ALREADY_EXISTS",
                               f"Serving endpoint with name '{req.name}' already exists", status=409)
            now = _now_ms()
            eid = uuid.uuid4().hex
            pending = self._decorate(build_config(req.config, eid, 1, p.name, now))
            meta = {
                "description": req.description or "",
                "tags": sorted(_dump(req.tags) or [], key=lambda t: t["key"]),
                "ai_gateway": _dump(req.ai_gateway),
                "budget_policy_id": req.budget_policy_id,
                "email_notifications": _dump(req.email_notifications),
                "rate_limits": _dump(req.rate_limits),
                "route_optimized": bool(req.route_optimized),
                "telemetry_config": _dump(req.telemetry_config),
                "task": _task_of(pending, self.catalog),
                "endpoint_type": _endpoint_type(pending),
                **(meta_extra or {}),
            }
            rec = EndpointRecord(
                id=eid, name=req.name, creator=p.name, created_ms=now, updated_ms=now,
                meta={k: v for k, v in meta.items() if v is not None}, active=None, pending=pending,
                config_update=ConfigUpdate.IN_PROGRESS.value, next_version=2,
            )
            if not await self.store.call(self.store.insert_endpoint, rec):   # another server made it just now
                raise ApiError("RESOURCE_ALREADY_EXISTS",
                               f"Serving endpoint with name '{req.name}' already exists", status=409)
            await self.store.call(self.perms.grant_creator, eid, p)
        await self.on_change()
        return detailed(rec, "CAN_MANAGE")

    async def update_config(self, p: Principal, name: str, cfg: s.EndpointCoreConfigInput) -> dict:
        rec, lvl = await self.store.call(self.authorized, p, name, "CAN_MANAGE")
        await self._check_models(cfg, p)
        await self._check_secret_refs(p, cfg)
        async with self._lock:
            rec = await self.store.call(self._get, name)
            if rec.config_update == ConfigUpdate.IN_PROGRESS.value:
                raise conflict(f"Endpoint '{name}' already has a config update in progress; "
                               "wait for it to finish before updating again.")
            now = _now_ms()
            previous = rec.active if rec.active and not rec.active.get("failed") else None
            pending = self._decorate(build_config(cfg, rec.id, rec.next_version, p.name, now, previous))
            rec.pending = pending
            rec.next_version += 1
            rec.config_update = check_config_update(
                ConfigUpdate(rec.config_update), ConfigUpdate.IN_PROGRESS).value
            rec.meta["task"] = _task_of(pending, self.catalog)
            rec.meta["endpoint_type"] = _endpoint_type(pending, rec.meta.get("endpoint_type"))
            rec.updated_ms = now
            await self.store.call(self._save, rec)
        await self.on_change()
        return detailed(rec, lvl)

    def _save(self, rec: EndpointRecord) -> None:
        try:
            self.store.save_endpoint(rec)
        except StaleRecord:
            raise conflict(f"Endpoint '{rec.name}' was changed by another request while this one "
                           "was being applied; nothing was changed. Read it again and retry.") from None

    def _decorate(self, cfg: dict) -> dict:
        """Foundation entities show their model; plaintext credentials are sealed at rest."""
        for e in cfg["served_entities"]:
            m = self.catalog.get(e.get("entity_name")) if self.catalog is not None else None
            if m is not None:
                e["foundation_model"] = m.foundation_model()
            if e.get("external_model") and self.seal is not None:
                e["external_model"] = self.seal(e["external_model"])
        return cfg

    async def delete(self, p: Principal, name: str) -> None:
        async with self._lock:
            rec, _ = await self.store.call(self.authorized, p, name, "CAN_MANAGE")
            await self.store.call(self.store.delete_endpoint, rec.id)
            await self.store.call(self.perms.forget, rec.id)
        await self.on_change()

    async def _mutate_meta(self, p: Principal, name: str, fn: Callable[[EndpointRecord], Any]) -> Any:
        async with self._lock:
            rec, lvl = await self.store.call(self.authorized, p, name, "CAN_MANAGE")
            result = fn(rec)
            rec.updated_ms = _now_ms()
            await self.store.call(self._save, rec)
        await self.on_change()
        return result if result is not None else detailed(rec, lvl)

    async def put_ai_gateway(self, p: Principal, name: str, cfg: s.AiGatewayConfig) -> dict:
        def fn(rec: EndpointRecord) -> dict:
            body = _dump(cfg) or {}
            if body:
                rec.meta["ai_gateway"] = body
            else:
                rec.meta.pop("ai_gateway", None)
            return body
        return await self._mutate_meta(p, name, fn)

    async def put_rate_limits(self, p: Principal, name: str, req: s.PutRateLimitsRequest) -> dict:
        def fn(rec: EndpointRecord) -> dict:
            rec.meta["rate_limits"] = _dump(req.rate_limits)
            return {"rate_limits": rec.meta["rate_limits"]}
        return await self._mutate_meta(p, name, fn)

    async def patch_tags(self, p: Principal, name: str, req: s.PatchTagsRequest) -> dict:
        def fn(rec: EndpointRecord) -> dict:
            tags = {t["key"]: t for t in rec.meta.get("tags", [])}
            for k in req.delete_tags or []:
                tags.pop(k, None)
            for t in req.add_tags or []:
                tags[t.key] = _dump(t)
            rec.meta["tags"] = [tags[k] for k in sorted(tags)]
            return {"tags": rec.meta["tags"]}
        return await self._mutate_meta(p, name, fn)

    async def update_notifications(self, p: Principal, name: str, req: s.UpdateNotificationsRequest) -> dict:
        def fn(rec: EndpointRecord) -> dict:
            rec.meta["email_notifications"] = _dump(req.email_notifications) or {}
            return {"name": rec.name, "email_notifications": rec.meta["email_notifications"]}
        return await self._mutate_meta(p, name, fn)

    async def patch_telemetry(self, p: Principal, name: str, req: s.PatchTelemetryRequest) -> dict:
        def fn(rec: EndpointRecord) -> None:
            if rec.config_update == ConfigUpdate.IN_PROGRESS.value:
                raise conflict(f"Endpoint '{name}' is updating; try again when the update is done.")
            if rec.meta.get("endpoint_type") == "EXTERNAL_MODEL":
                raise invalid("telemetry_config: not supported for external model endpoints")
            if req.telemetry_config is None:
                rec.meta.pop("telemetry_config", None)
            else:
                rec.meta["telemetry_config"] = _dump(req.telemetry_config)
        return await self._mutate_meta(p, name, fn)


def _task_of(cfg: dict, catalog: Catalog | None = None) -> str | None:
    for e in cfg["served_entities"]:
        if e.get("external_model"):
            return e["external_model"]["task"]
        m = catalog.get(e.get("entity_name")) if catalog is not None else None
        if m is not None:
            return m.task
    return None


def _endpoint_type(cfg: dict, current: str | None = None) -> str:
    """EXTERNAL_MODEL when an external model is served; a pay-per-token endpoint (made by the
    server as FOUNDATION_MODEL_API) keeps its type otherwise; else CUSTOM_MODEL."""
    if any(e.get("external_model") for e in cfg["served_entities"]):
        return "EXTERNAL_MODEL"
    return "FOUNDATION_MODEL_API" if current == "FOUNDATION_MODEL_API" else "CUSTOM_MODEL"
