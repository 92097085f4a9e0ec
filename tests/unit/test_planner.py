"""The planner is a pure function of (stored endpoints, observed groups, clock)."""

from ladle.control.configs import build_config
from ladle.control.planner import Ensure, Fail, PlanInput, Promote, SetState, Stop, plan
from ladle.control.states import GroupState
from ladle.control.store import EndpointRecord
from ladle.runtimes.base import GroupObs
from ladle.schemas.endpoints import EndpointCoreConfigInput

P = PlanInput(now=1000.0, idle_s=60.0, cpu_count=2)


def cfg(*versions, stz=False, version=1, split=None):
    ents = [{"entity_name": "m", "entity_version": str(v), "scale_to_zero_enabled": stz} for v in versions]
    body = {"served_entities": ents}
    if split:
        body["traffic_config"] = {"routes": [
            {"served_entity_name": f"m-{v}", "traffic_percentage": pct} for v, pct in zip(versions, split)]}
    return build_config(EndpointCoreConfigInput.model_validate(body), "e" * 32, version, "u", 0)


def rec(active=None, pending=None, update="IN_PROGRESS"):
    return EndpointRecord(id="e" * 32, name="ep", creator="u", created_ms=0, updated_ms=0,
                          active=active, pending=pending, config_update=update)


def obs(state, target=1, in_flight=0, last_used=990.0, message="m"):
    return GroupObs(state, message, 1 if state == GroupState.READY else 0, target, in_flight, last_used)


def key(c, i=0):
    return c["served_entities"][i]["_key"]


def test_new_endpoint_starts_its_groups():
    pending = cfg(1)
    actions = plan([rec(pending=pending)], {}, P)
    ensures = [a for a in actions if isinstance(a, Ensure)]
    assert [e.spec.key for e in ensures] == [key(pending)]
    assert ensures[0].target == 1
    assert not any(isinstance(a, (Promote, Fail)) for a in actions)


def test_pending_promoted_when_all_groups_ready():
    pending = cfg(1, 2, split=(50, 50))
    observed = {key(pending, 0): obs(GroupState.READY), key(pending, 1): obs(GroupState.STARTING)}
    assert not any(isinstance(a, Promote) for a in plan([rec(pending=pending)], observed, P))
    observed[key(pending, 1)] = obs(GroupState.READY)
    assert Promote("e" * 32) in plan([rec(pending=pending)], observed, P)


def test_failed_group_fails_pending_and_names_the_reason():
    active, pending = cfg(1), cfg(2, version=2)
    observed = {key(active): obs(GroupState.READY), key(pending): obs(GroupState.FAILED, message="boom")}
    actions = plan([rec(active=active, pending=pending)], observed, P)
    fails = [a for a in actions if isinstance(a, Fail)]
    assert len(fails) == 1 and "boom" in fails[0].reason and fails[0].keys == (key(pending),)
    # the active config's group is kept
    assert Stop(key(active)) not in actions


def test_old_groups_stop_after_promotion():
    old, new = cfg(1), cfg(2, version=2)
    observed = {key(old): obs(GroupState.READY), key(new): obs(GroupState.READY)}
    actions = plan([rec(active=new, update="NOT_UPDATING")], observed, P)
    assert Stop(key(old)) in actions and Stop(key(new)) not in actions


def test_unchanged_entity_reuses_its_group():
    a, b = cfg(1), cfg(1, version=2)
    assert key(a) == key(b)


def test_deleted_endpoint_groups_stop():
    c = cfg(1)
    assert plan([], {key(c): obs(GroupState.READY)}, P) == [Stop(key(c))]


def test_scale_to_zero_after_idle_and_back_on_use():
    c = cfg(1, stz=True)
    r = rec(active=c, update="NOT_UPDATING")
    idle = {key(c): obs(GroupState.READY, last_used=P.now - 61)}
    assert Ensure(_spec(r, c), 0) in plan([r], idle, P)
    busy = {key(c): obs(GroupState.READY, last_used=P.now - 61, in_flight=1)}
    assert not [a for a in plan([r], busy, P) if isinstance(a, Ensure)]
    woken = {key(c): obs(GroupState.SCALED_TO_ZERO, target=0, last_used=P.now)}
    assert Ensure(_spec(r, c), 1) in plan([r], woken, P)


def test_no_scale_to_zero_without_the_flag():
    c = cfg(1, stz=False)
    idle = {key(c): obs(GroupState.READY, last_used=0)}
    assert not [a for a in plan([rec(active=c, update="NOT_UPDATING")], idle, P) if isinstance(a, Ensure)]


def test_entity_state_recorded_from_observation():
    c = cfg(1)
    actions = plan([rec(active=c, update="NOT_UPDATING")], {key(c): obs(GroupState.RECOVERING)}, P)
    states = [a for a in actions if isinstance(a, SetState)]
    assert states and states[0].deployment == "DEPLOYMENT_RECOVERING"


def test_failed_first_create_runs_nothing():
    c = cfg(1)
    c["failed"] = True
    assert plan([rec(active=c, update="UPDATE_FAILED")], {}, P) == []


def _spec(r, c):
    from ladle.control.planner import group_spec

    return group_spec(r, c["served_entities"][0], P.cpu_count)
