"""Pay-per-token foundation endpoints in the planner: the foundation entity kind, no replica
until the first request, no scale-down while a cold start is under way."""

from __future__ import annotations

from ladle.control.planner import Ensure, PlanInput, plan
from ladle.control.states import GroupState
from ladle.control.store import EndpointRecord
from ladle.runtimes.base import GroupObs

P = PlanInput(now=1000.0, idle_s=5.0, cpu_count=4)
ENT = {"name": "ladle-x", "entity_name": "system.ai.x", "entity_version": "1", "workload_size": "Small",
       "scale_to_zero_enabled": True, "_key": "k1", "state": {}}


def rec(endpoint_type="FOUNDATION_MODEL_API"):
    cfg = {"config_version": 1, "served_entities": [dict(ENT)],
           "traffic_config": {"routes": [{"served_entity_name": "ladle-x", "traffic_percentage": 100}]}}
    return EndpointRecord(id="e" * 32, name="ladle-x", creator="system", created_ms=0, updated_ms=0,
                          meta={"endpoint_type": endpoint_type}, active=cfg, config_update="NOT_UPDATING")


def ensure(actions):
    return next(a for a in actions if isinstance(a, Ensure))


def obs(state, target, last_used, in_flight=0):
    return GroupObs(state, "m", 0, target, in_flight, last_used)


def test_pay_per_token_group_is_created_at_zero_with_the_foundation_kind():
    e = ensure(plan([rec()], {}, P))
    assert e.target == 0 and e.spec.kind == "foundation" and e.spec.model_name == "system.ai.x"


def test_a_request_wakes_it_and_a_cold_start_is_not_scaled_down():
    woken = {"k1": obs(GroupState.SCALED_TO_ZERO, 0, last_used=999.0)}
    assert ensure(plan([rec()], woken, P)).target == 1
    starting = {"k1": obs(GroupState.STARTING, 1, last_used=900.0)}       # long start, no request since
    assert not [a for a in plan([rec()], starting, P) if isinstance(a, Ensure)]   # target stays 1
    idle = {"k1": obs(GroupState.READY, 1, last_used=900.0)}
    assert ensure(plan([rec()], idle, P)).target == 0
    never_used = {"k1": obs(GroupState.BUILDING, 0, last_used=float("-inf"))}
    assert not [a for a in plan([rec()], never_used, P) if isinstance(a, Ensure)]


def test_other_endpoints_start_their_replicas():
    e = ensure(plan([rec("CUSTOM_MODEL")], {}, P))
    assert e.target == 1 and e.spec.kind == "foundation"
