"""Render stored endpoint records as the API's objects (ServingEndpoint and
ServingEndpointDetailed, as Databricks answers them)."""

from __future__ import annotations

import copy
from typing import Any

from ladle.control.states import ConfigUpdate, Deployment, Ready
from ladle.control.store import EndpointRecord

HIDDEN_ENTITY_KEYS = {"_key", "burst_scaling_enabled"}


def _scrub_secrets(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _scrub_secrets(v) for k, v in obj.items() if not k.endswith("_plaintext")}
    if isinstance(obj, list):
        return [_scrub_secrets(v) for v in obj]
    return obj


def _entity_out(e: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in e.items() if k not in HIDDEN_ENTITY_KEYS}
    if "external_model" in out:
        out["external_model"] = _scrub_secrets(out["external_model"])
    return out


def _served_model_out(e: dict[str, Any]) -> dict[str, Any]:
    out = {
        "name": e["name"], "model_name": e.get("entity_name"), "model_version": e.get("entity_version"),
        "workload_size": e.get("workload_size"), "workload_type": e.get("workload_type"),
        "scale_to_zero_enabled": e.get("scale_to_zero_enabled", False), "state": e.get("state"),
        "creator": e.get("creator"), "creation_timestamp": e.get("creation_timestamp"),
    }
    if e.get("environment_vars"):
        out["environment_vars"] = e["environment_vars"]
    return out


def _with_throughput(e: dict[str, Any], out: dict[str, Any], measured: dict[str, float]) -> dict[str, Any]:
    """ladle's own field on a provisioned-throughput entity: the measured tokens/s of one of
    its replicas (control/throughput.py), once measured."""
    tps = measured.get(f"{e.get('entity_name')}/{e.get('entity_version')}")
    if tps and (e.get("max_provisioned_throughput") or e.get("provisioned_model_units")):
        out["ladle_tokens_per_second_per_replica"] = tps
    return out


def config_out(cfg: dict[str, Any], pending: bool = False,
               measured: dict[str, float] | None = None) -> dict[str, Any]:
    ents = cfg["served_entities"]
    out: dict[str, Any] = {
        "config_version": cfg["config_version"],
        "served_entities": [_with_throughput(e, _entity_out(e), measured or {}) for e in ents],
        "served_models": [_served_model_out(e) for e in ents if not e.get("external_model")],
        "traffic_config": copy.deepcopy(cfg["traffic_config"]),
    }
    if cfg.get("auto_capture_config"):
        out["auto_capture_config"] = cfg["auto_capture_config"]
    if pending:
        out["start_time"] = cfg.get("start_time")
    return out


def state_of(rec: EndpointRecord) -> dict[str, str]:
    active = rec.active
    ready = (
        active is not None and not active.get("failed")
        and all((e.get("state") or {}).get("deployment") == Deployment.READY.value
                for e in active["served_entities"])
    )
    return {"ready": (Ready.READY if ready else Ready.NOT_READY).value,
            "config_update": ConfigUpdate(rec.config_update).value}


def _common(rec: EndpointRecord) -> dict[str, Any]:
    m = rec.meta
    out: dict[str, Any] = {
        "name": rec.name, "id": rec.id, "creator": rec.creator,
        "creation_timestamp": rec.created_ms, "last_updated_timestamp": rec.updated_ms,
        "state": state_of(rec), "tags": m.get("tags", []), "description": m.get("description", ""),
    }
    for k in ("ai_gateway", "task", "budget_policy_id", "telemetry_config"):
        if m.get(k) is not None:
            out[k] = m[k]
    return out


def detailed(rec: EndpointRecord, permission_level: str | None) -> dict[str, Any]:
    out = _common(rec)
    if rec.active is not None:
        out["config"] = config_out(rec.active, measured=rec.meta.get("throughput"))
    if rec.pending is not None:
        out["pending_config"] = config_out(rec.pending, pending=True, measured=rec.meta.get("throughput"))
    m = rec.meta
    if m.get("email_notifications") is not None:
        out["email_notifications"] = m["email_notifications"]
    if m.get("rate_limits"):
        out["rate_limits"] = m["rate_limits"]
    out["permission_level"] = permission_level
    out["route_optimized"] = bool(m.get("route_optimized", False))
    out["endpoint_type"] = m.get("endpoint_type", "CUSTOM_MODEL")
    return out


def summary(rec: EndpointRecord) -> dict[str, Any]:
    out = _common(rec)
    if rec.meta.get("route_optimized"):
        out["route_optimized"] = True
    cfg = rec.active or rec.pending
    if cfg is not None:
        ents = cfg["served_entities"]
        out["config"] = {
            "served_entities": [
                {k: v for k, v in {
                    "name": e["name"], "entity_name": e.get("entity_name"),
                    "entity_version": e.get("entity_version"),
                    "external_model": _scrub_secrets(e["external_model"]) if e.get("external_model") else None,
                    "foundation_model": e.get("foundation_model"),
                }.items() if v is not None}
                for e in ents
            ],
            "served_models": [
                {"name": e["name"], "model_name": e.get("entity_name"), "model_version": e.get("entity_version")}
                for e in ents if not e.get("external_model")
            ],
        }
    return out
