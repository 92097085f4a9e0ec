"""Turn a validated config input into the stored config record, checking the rules that
span fields (names, traffic, limits). Pure functions; no I/O."""

from __future__ import annotations

import hashlib
from typing import Any

import orjson

from ladle.control.autoscale import scale_range
from ladle.control.states import Deployment
from ladle.schemas.endpoints import (
    MAX_SERVED_ENTITIES, NAME_RE, EndpointCoreConfigInput, ServedEntityInput,
)
from ladle.schemas.errors import invalid

PER_REPLICA_CONCURRENCY = 4   # requests one replica serves at once (more when the cap binds)


def entities_of(cfg: EndpointCoreConfigInput) -> tuple[list[ServedEntityInput], bool]:
    """The served entities of a config input and whether it used legacy `served_models`."""
    if cfg.served_entities and cfg.served_models:
        raise invalid("config: set served_entities or served_models, not both")
    if cfg.served_models:
        return [m.as_entity() for m in cfg.served_models], True
    return list(cfg.served_entities or []), False


def replicas_for(entity: dict[str, Any], cpu_count: int) -> tuple[int, int]:
    """(the most replicas, concurrency per replica) for a stored served entity: its range's
    maximum (control/autoscale.py `scale_range`, capped at `cpu_count`)."""
    rng = scale_range(entity, cpu_count, PER_REPLICA_CONCURRENCY)
    return rng.hi, rng.concurrency


def entity_key(endpoint_id: str, entity: dict[str, Any]) -> str:
    """Replica groups are shared across config versions when what they run is unchanged."""
    runtime = {k: entity.get(k) for k in (
        "entity_name", "entity_version", "workload_size", "workload_type", "scale_to_zero_enabled",
        "min_provisioned_concurrency", "max_provisioned_concurrency", "environment_vars",
        "external_model",
    )}   # not the throughput range nor model units: a new one rescales the same group
    digest = hashlib.sha256(orjson.dumps(runtime, option=orjson.OPT_SORT_KEYS)).hexdigest()[:12]
    return f"{endpoint_id[:12]}-{entity['name']}-{digest}"


def build_config(
    cfg: EndpointCoreConfigInput, endpoint_id: str, version: int, creator: str, now_ms: int,
    previous: dict[str, Any] | None = None,
) -> dict[str, Any]:
    ents, legacy = entities_of(cfg)
    field = "served_models" if legacy else "served_entities"
    if not ents:
        raise invalid(f"config.{field}: at least one served entity is required")
    if len(ents) > MAX_SERVED_ENTITIES:
        raise invalid(f"config.{field}: at most {MAX_SERVED_ENTITIES} served entities are allowed, "
                      f"got {len(ents)}")
    external = {e.external_model is not None for e in ents}
    if len(external) > 1:
        raise invalid(f"config.{field}: an endpoint cannot mix external models with other entities")
    if previous and previous.get("served_entities"):
        was_external = any(e.get("external_model") for e in previous["served_entities"])
        if was_external != (True in external):
            raise invalid(f"config.{field}: an endpoint cannot switch between external and "
                          "non-external served entities")
    tasks = {e.external_model.task for e in ents if e.external_model}
    if len(tasks) > 1:
        raise invalid(f"config.{field}: all external models of an endpoint must share one task")
    prev_by_name = {e["name"]: e for e in (previous or {}).get("served_entities", [])}
    out, names = [], set()
    for i, e in enumerate(ents):
        name = e.name or e.default_name()
        if not NAME_RE.match(name):
            raise invalid(f"config.{field}[{i}].name: '{name}' must be letters, digits, '-' or '_'")
        if name in names:
            raise invalid(f"config.{field}[{i}].name: duplicate served entity name '{name}'")
        names.add(name)
        rec = e.model_dump(exclude_none=True, mode="json")
        rec["name"] = name
        if rec.get("external_model") is None:
            rec.setdefault("workload_size", "Small")
            rec.setdefault("workload_type", "CPU")
            rec.setdefault("scale_to_zero_enabled", False)
        prev = prev_by_name.get(name)
        rec["creator"] = creator
        rec["creation_timestamp"] = prev["creation_timestamp"] if prev else now_ms
        rec["state"] = {"deployment": Deployment.CREATING.value,
                        "deployment_state_message": "Creating served entity"}
        rec["_key"] = entity_key(endpoint_id, rec)
        out.append(rec)
    routes = _routes(cfg, [r["name"] for r in out])
    record: dict[str, Any] = {
        "config_version": version,
        "start_time": now_ms,
        "served_entities": out,
        "traffic_config": {"routes": routes},
        "legacy_served_models": legacy,
    }
    if cfg.auto_capture_config is not None:
        record["auto_capture_config"] = cfg.auto_capture_config.model_dump(exclude_none=True)
    return record


def _routes(cfg: EndpointCoreConfigInput, names: list[str]) -> list[dict[str, Any]]:
    if cfg.traffic_config is None or not cfg.traffic_config.routes:
        if len(names) == 1:
            return [{"served_model_name": names[0], "served_entity_name": names[0],
                     "traffic_percentage": 100}]
        raise invalid("config.traffic_config: required when there is more than one served entity")
    routes, seen = [], set()
    for i, r in enumerate(cfg.traffic_config.routes):
        target = r.target
        if target is None:
            raise invalid(f"config.traffic_config.routes[{i}].served_entity_name: is required")
        if target not in names:
            raise invalid(f"config.traffic_config.routes[{i}].served_entity_name: '{target}' is not "
                          f"a served entity of this config (have: {', '.join(names)})")
        if target in seen:
            raise invalid(f"config.traffic_config.routes[{i}]: '{target}' appears twice")
        seen.add(target)
        routes.append({"served_model_name": target, "served_entity_name": target,
                       "traffic_percentage": r.traffic_percentage})
    total = sum(r["traffic_percentage"] for r in routes)
    if total != 100:
        raise invalid(f"config.traffic_config.routes: traffic_percentage values must sum to 100, got {total}")
    return routes
