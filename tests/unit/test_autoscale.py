"""The autoscaling policy against synthetic load traces on a fake clock (one sample a second,
replicas start at once unless a test says otherwise)."""

import pytest

from ladle.control.autoscale import Autoscaler, Knobs, ScaleRange, decide, scale_range
from ladle.runtimes.base import GroupObs
from ladle.schemas.replicas import GroupState

K = Knobs(target_in_flight=3.0, up_window_s=2.0, down_window_s=10.0, cooldown_s=10.0)
MEDIUM = {"workload_size": "Medium"}   # 8-16 concurrent -> 2-4 replicas of 4


def run(trace, ent=MEDIUM, knobs=K, cap=16, start_delay=0):
    """Feed `trace` (load per second) through an Autoscaler; the targets second by second."""
    a = Autoscaler(knobs, cap)
    target = ready = 0
    started: dict[int, float] = {}
    out = []
    for t, load in enumerate(trace):
        now = 1000.0 + t
        if target and ready < target and now - started.get(target, now) >= start_delay:
            ready = target
        ready = min(ready, target)
        obs = {"k": GroupObs(GroupState.READY, "", ready, target, int(load), 0.0)} if target else {}
        targets, _ = a.targets({"k": ent}, obs, now)
        if targets["k"] != target:
            started[targets["k"]] = now
            target = targets["k"]
        out.append(target)
    return out


def changes(series):
    return sum(1 for a, b in zip(series, series[1:]) if a != b)


@pytest.mark.parametrize("ent,cap,want", [
    ({"workload_size": "Small"}, 8, ScaleRange(1, 1, 4)),
    ({"workload_size": "Medium"}, 8, ScaleRange(2, 4, 4)),
    ({"workload_size": "Large"}, 8, ScaleRange(4, 8, 8)),       # capped: each replica takes 8
    ({"workload_size": "Large"}, 2, ScaleRange(2, 2, 32)),
    ({"min_provisioned_concurrency": 0, "max_provisioned_concurrency": 12}, 8, ScaleRange(1, 3, 4)),
    ({"workload_size": "Small", "scale_to_zero_enabled": True}, 8, ScaleRange(1, 1, 4)),
    # a size's lower bound is 0 with scale-to-zero: one replica while there is any load
    ({"workload_size": "Medium", "scale_to_zero_enabled": True}, 8, ScaleRange(1, 4, 4)),
    ({"workload_size": "Large", "scale_to_zero_enabled": True}, 8, ScaleRange(1, 8, 8)),
    ({"min_provisioned_concurrency": 8, "max_provisioned_concurrency": 16, "scale_to_zero_enabled": True},
     8, ScaleRange(2, 4, 4)),   # an explicit minimum is the user's
])
def test_range_follows_the_size_and_the_cap(ent, cap, want):
    assert scale_range(ent, cap) == want


def test_a_new_group_starts_at_the_minimum():
    assert run([0]) == [2]


def test_burst_scales_up_within_two_samples_and_back_down_after_the_window():
    trace = [1] * 5 + [32] * 20 + [1] * 30
    got = run(trace)
    assert got[4] == 2
    assert got.index(4) <= 5 + 2                     # up within the up window
    assert max(got) == 4                             # never above the range's maximum
    down_at = next(i for i in range(25, len(got)) if got[i] == 2)
    assert 25 + K.down_window_s - 1 <= down_at <= 25 + K.down_window_s + 1
    assert min(got) == 2                             # never below the minimum
    assert changes(got) == 2


def test_sawtooth_faster_than_the_down_window_holds_the_peak():
    trace = ([2] * 3 + [12] * 3) * 10
    got = run(trace)
    assert max(got) == 4 and changes(got[6:]) == 0   # up once, then steady


def test_slow_ramp_adds_replicas_one_step_at_a_time():
    trace = [i / 2 for i in range(30)]               # 0 -> 14.5 in-flight over 30 s
    got = run(trace)
    assert got == sorted(got) and got[-1] == 4 and changes(got) == 2


@pytest.mark.parametrize("low,high", [(8, 10), (5, 7), (2, 4)])
def test_flapping_around_a_threshold_does_not_oscillate(low, high):
    trace = [low, high] * 40
    got = run(trace)
    assert changes(got[5:]) == 0


def test_scale_down_waits_for_the_cooldown_after_a_change():
    k = Knobs(target_in_flight=3.0, up_window_s=2.0, down_window_s=2.0, cooldown_s=8.0)
    got = run([12] * 3 + [0] * 12, knobs=k)
    up_at = got.index(4)
    down_at = got.index(2, up_at)
    assert down_at - up_at == 8   # the load fell long before: the cool-down after the scale up rules


def test_no_scale_down_while_replicas_start():
    d = decide(ScaleRange(1, 4, 4), [(t, 0.0) for t in range(100)], running=2, starting=1,
               target=3, last_change=0.0, now=100.0, k=K)
    assert d.target == 3 and not d.changed


def test_the_cap_bounds_the_target():
    assert max(run([40] * 10, ent={"workload_size": "Large"}, cap=3)) == 3


def test_disabled_runs_the_maximum():
    assert run([0, 0, 40, 0], knobs=Knobs(enabled=False)) == [4, 4, 4, 4]


def test_reasons_name_the_load_and_the_window():
    a = Autoscaler(K, 16)
    a.targets({"k": MEDIUM}, {}, 0.0)
    _, ch = a.targets({"k": MEDIUM}, {"k": GroupObs(GroupState.READY, "", 2, 2, 11, 0.0)}, 1.0)
    old, new, reason = ch["k"]
    assert (old, new) == (2, 4) and "in-flight 5.5 per replica over 2 s" in reason


def test_waiting_requests_count_as_load():
    a = Autoscaler(K, 16)
    a.targets({"k": MEDIUM}, {}, 0.0)
    obs = GroupObs(GroupState.READY, "", 2, 2, 6, 0.0, waiting=6)
    targets, _ = a.targets({"k": MEDIUM}, {"k": obs}, 1.0)
    assert targets["k"] == 4


def test_slow_starts_do_not_overshoot_the_maximum():
    got = run([1] * 3 + [64] * 20, start_delay=5)
    assert max(got) == 4


def test_a_changed_range_clamps_the_target_at_once():
    """An update-config to a smaller range (or a cap) lands inside it without waiting."""
    d = decide(ScaleRange(1, 2, 4), [(t, 30.0) for t in range(10)], running=4, starting=0,
               target=4, last_change=9.0, now=10.0, k=K)
    assert (d.target, d.changed) == (2, True) and "above the range's maximum" in d.reason
