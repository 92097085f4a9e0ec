"""plan(desired, observed) -> actions: the pure heart of the reconciler.

Given the stored endpoints and what the runtime reports for each replica group, decide
which groups must run (and at what size), which must stop, which pending configs are
promoted or failed, and which served-entity states to record. No I/O, no clock reads:
everything comes in as arguments, so it is unit-tested without processes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping, Union

from ladle.control.configs import replicas_for
from ladle.control.states import DEPLOYMENT_FOR_GROUP, Deployment, GroupState
from ladle.control.store import EndpointRecord
from ladle.runtimes.base import GroupObs, GroupSpec


@dataclass(frozen=True)
class Ensure:
    spec: GroupSpec
    target: int


@dataclass(frozen=True)
class Stop:
    key: str


@dataclass(frozen=True)
class Promote:
    endpoint_id: str


@dataclass(frozen=True)
class Fail:
    endpoint_id: str
    reason: str
    keys: tuple[str, ...]   # the pending config's groups that no active config uses


@dataclass(frozen=True)
class SetState:
    endpoint_id: str
    which: str              # "active" | "pending"
    entity_name: str
    deployment: str
    message: str


Action = Union[Ensure, Stop, Promote, Fail, SetState]


@dataclass(frozen=True)
class PlanInput:
    now: float
    idle_s: float
    cpu_count: int
    # the autoscaler's replica count per group key (control/autoscale.py); a group missing
    # here runs its range's maximum
    targets: Mapping[str, int] = field(default_factory=dict)
    # the autoscaler's last decision per group key, shown as the entity's state message
    # while the replicas move to it ("scaling up: 1 -> 3 replicas (...)")
    notes: Mapping[str, str] = field(default_factory=dict)


def group_spec(rec: EndpointRecord, ent: dict[str, Any], cpu_count: int) -> GroupSpec:
    _, concurrency = replicas_for(ent, cpu_count)
    return GroupSpec(
        key=ent["_key"], endpoint_id=rec.id, endpoint_name=rec.name, entity_name=ent["name"],
        model_name=ent.get("entity_name", ""), model_version=str(ent.get("entity_version", "")),
        concurrency=concurrency, env_vars=tuple(sorted((ent.get("environment_vars") or {}).items())),
        kind=entity_kind(ent),
    )


def entity_kind(ent: dict[str, Any]) -> str:
    """Foundation models (ladle's catalog, `system.ai.*`) or MLflow models (the registry)."""
    return "foundation" if str(ent.get("entity_name") or "").startswith("system.ai.") else "mlflow_pyfunc"


def _runs_replicas(ent: dict[str, Any]) -> bool:
    return not ent.get("external_model")


def _target(ent: dict[str, Any], obs: GroupObs | None, which: str, p: PlanInput,
            starts_at_zero: bool = False) -> int:
    replicas = max(1, p.targets.get(ent["_key"]) or replicas_for(ent, p.cpu_count)[0])
    if starts_at_zero and ent.get("scale_to_zero_enabled") and (obs is None or (
        obs.state in (GroupState.BUILDING, GroupState.READY, GroupState.SCALED_TO_ZERO)
        and obs.in_flight == 0 and p.now - obs.last_used > p.idle_s
    )):
        return 0  # pay-per-token foundation endpoints: no replica until the first request
    if (
        which == "active" and ent.get("scale_to_zero_enabled") and obs is not None
        and obs.state in (GroupState.READY, GroupState.SCALED_TO_ZERO)
        and obs.in_flight == 0 and p.now - obs.last_used > p.idle_s
    ):
        return 0
    return replicas


def plan(endpoints: list[EndpointRecord], observed: dict[str, GroupObs], p: PlanInput) -> list[Action]:
    actions: list[Action] = []
    wanted: dict[str, Ensure] = {}
    for rec in endpoints:
        configs = [("active", rec.active), ("pending", rec.pending)]
        for which, cfg in configs:
            if cfg is None or cfg.get("failed"):
                continue
            for ent in cfg["served_entities"]:
                if not _runs_replicas(ent):
                    dep, msg = Deployment.READY.value, "External model: no replicas to run"
                else:
                    obs = observed.get(ent["_key"])
                    target = _target(ent, obs, which, p,
                                     rec.meta.get("endpoint_type") == "FOUNDATION_MODEL_API")
                    prev = wanted.get(ent["_key"])
                    if prev is None or target > prev.target:
                        wanted[ent["_key"]] = Ensure(group_spec(rec, ent, p.cpu_count), target)
                    if obs is None:
                        dep, msg = Deployment.CREATING.value, "Creating served entity"
                    else:
                        dep, msg = DEPLOYMENT_FOR_GROUP[obs.state].value, obs.message
                        note = p.notes.get(ent["_key"])
                        if note and obs.state == GroupState.READY and obs.ready != obs.target:
                            msg = note
                state = ent.get("state") or {}
                if (state.get("deployment"), state.get("deployment_state_message")) != (dep, msg):
                    actions.append(SetState(rec.id, which, ent["name"], dep, msg))
        if rec.pending is not None:
            actions.extend(_judge_pending(rec, observed))
    for key, ens in wanted.items():
        obs = observed.get(key)
        if obs is None or obs.target != ens.target:
            actions.append(ens)
    for key, obs in observed.items():
        if key not in wanted and obs.state != GroupState.STOPPING:
            actions.append(Stop(key))
    return actions


def _judge_pending(rec: EndpointRecord, observed: dict[str, GroupObs]) -> list[Action]:
    ents = [e for e in rec.pending["served_entities"] if _runs_replicas(e)]
    obs = [(e, observed.get(e["_key"])) for e in ents]
    failed = [(e, o) for e, o in obs if o is not None and o.state == GroupState.FAILED]
    if failed:
        active_keys = {e["_key"] for e in (rec.active or {}).get("served_entities", [])}
        reason = "; ".join(f"Served entity '{e['name']}' failed: {o.message}" for e, o in failed)
        own = tuple(e["_key"] for e in ents if e["_key"] not in active_keys)
        return [Fail(rec.id, reason, own)]
    if all(o is not None and o.state in (GroupState.READY, GroupState.SCALED_TO_ZERO) for _, o in obs):
        return [Promote(rec.id)]
    return []
