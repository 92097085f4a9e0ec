"""The rate limiter (sliding windows, exact Retry-After) and the limit policy, with a fake clock."""

from __future__ import annotations

import math

import pytest

from ladle.gateway.ratelimit import (
    Bucket, MemoryLimiter, Need, RateLimited, admit, compile_limits, token_buckets,
)
from ladle.schemas.principal import Principal


class Clock:
    def __init__(self, t: float = 1000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def calls(key: str, limit: int) -> Need:
    return Need((Bucket(key, limit),), 1, f"{limit} calls")


async def test_a_window_admits_exactly_its_calls_and_retry_after_is_exact():
    clock = Clock()
    lim = MemoryLimiter(clock)
    admitted = 0
    for i in range(10):
        clock.t = 1000.0 + i * 0.5          # 10 calls over 4.5 s
        wait, _ = await lim.acquire([calls("k", 5)])
        admitted += wait == 0
    assert admitted == 5
    # the first call (t=1000) leaves the window at t=1060: refused calls wait exactly that long
    clock.t = 1010.25
    wait, need = await lim.acquire([calls("k", 5)])
    assert wait == pytest.approx(49.75) and need.label == "5 calls"
    clock.t = 1059.999
    assert (await lim.acquire([calls("k", 5)]))[0] == pytest.approx(0.001, abs=1e-6)
    clock.t = 1060.0
    assert (await lim.acquire([calls("k", 5)]))[0] == 0
    # sliding: the next slot frees when the second call (t=1000.5) leaves
    wait, _ = await lim.acquire([calls("k", 5)])
    assert wait == pytest.approx(0.5)


async def test_no_burst_at_a_window_edge():
    """A fixed window would admit 2x around a boundary; a sliding one admits `calls` in any 60 s."""
    clock = Clock(59.9)
    lim = MemoryLimiter(clock)
    ok_times = []
    for step in range(0, 400):
        clock.t = 59.9 + step * 0.05    # 20 s of requests, 20 per second
        if (await lim.acquire([calls("k", 10)]))[0] == 0:
            ok_times.append(clock.t)
    assert len(ok_times) == 10


async def test_all_needs_must_pass_and_nothing_is_charged_on_refusal():
    clock = Clock()
    lim = MemoryLimiter(clock)
    big, small = calls("endpoint", 100), calls("user", 2)
    assert (await lim.acquire([big, small]))[0] == 0
    assert (await lim.acquire([big, small]))[0] == 0
    wait, need = await lim.acquire([big, small])
    assert wait == pytest.approx(60.0) and need is small
    assert lim.windows["endpoint"].total == 2       # the refused call charged nothing
    assert (await lim.acquire([big]))[0] == 0


async def test_any_of_options_admits_while_one_group_has_room():
    clock = Clock()
    lim = MemoryLimiter(clock)
    need = Need((Bucket("g1", 1), Bucket("g2", 3)), 1, "groups")
    results = []
    for i in range(5):
        clock.t = 1000 + i
        results.append((await lim.acquire([need]))[0])
    assert [r == 0 for r in results] == [True, True, True, False, False]
    # g1 frees at 1060, g2 at 1060 too (its oldest of 3 calls): the smallest wait is reported
    assert results[3] == pytest.approx(57.0)


async def test_tokens_are_post_paid_and_admit_while_below_the_limit():
    clock = Clock()
    lim = MemoryLimiter(clock)
    tok = Need((Bucket("t", 100),), 0, "100 tokens")
    assert (await lim.acquire([tok]))[0] == 0
    await lim.charge(token_buckets([tok]), 80)
    clock.t += 10
    assert (await lim.acquire([tok]))[0] == 0       # 80 < 100
    await lim.charge(token_buckets([tok]), 30)      # the answer overshoots: 110
    clock.t += 10
    wait, _ = await lim.acquire([tok])
    assert wait == pytest.approx(40.0)              # the first 80 leave at t0+60
    clock.t += 40
    assert (await lim.acquire([tok]))[0] == 0


async def test_limit_zero_never_admits():
    lim = MemoryLimiter(Clock())
    assert (await lim.acquire([calls("z", 0)]))[0] == math.inf


async def test_sweep_forgets_idle_keys_and_ticks_bound_memory():
    clock = Clock()
    lim = MemoryLimiter(clock, sweep_every=10)
    for i in range(5):
        await lim.acquire([calls(f"k{i}", 10)])
    for _ in range(1000):                 # within one tick: one log entry
        await lim.charge([Bucket("t", 10**9)], 1)
    assert len(lim.windows["t"].events) == 1 and lim.windows["t"].total == 1000
    clock.t += 120
    for _ in range(10):
        await lim.acquire([calls("fresh", 100)])
    assert set(lim.windows) == {"fresh"}


# -- policy --------------------------------------------------------------------------------
ALICE = Principal("alice", groups=frozenset({"users", "ml"}))
BOB = Principal("bob", groups=frozenset({"users", "ml", "analysts"}))
CAROL = Principal("carol", groups=frozenset({"users"}))
SP = Principal("sp-123", kind="service_principal", groups=frozenset({"users"}))


def gw(*limits):
    return {"rate_limits": [dict(renewal_period="minute", **lim) for lim in limits]}


def labels(pol, p):
    return sorted(n.label for n in pol.needs(p))


def test_policy_levels_follow_databricks_precedence():
    pol = compile_limits("e1", gw(
        {"calls": 100},                                          # endpoint (default key)
        {"calls": 5, "key": "user"},                             # default per user
        {"calls": 50, "key": "user", "principal": "alice"},      # custom user
        {"calls": 20, "key": "user_group", "principal": "ml"},
        {"calls": 30, "key": "user_group", "principal": "analysts"},
        {"tokens": 1000, "key": "service_principal", "principal": "sp-123"},
    ), None)
    # custom user limit wins over groups and default
    assert labels(pol, ALICE) == ["100 calls per minute for the endpoint", "50 calls per minute for user 'alice'"]
    # groups (any of) win over the default
    bob = pol.needs(BOB)
    assert [len(n.options) for n in bob] == [1, 2]
    assert {b.key for b in bob[1].options} == {"e1/calls/group:analysts", "e1/calls/group:ml"}
    # nobody special: the default per-user limit, keyed per principal
    carol = pol.needs(CAROL)
    assert [b.key for n in carol for b in n.options] == ["e1/calls/endpoint", "e1/calls/principal:carol"]
    sp = pol.needs(SP)
    assert [(b.key, n.cost) for n in sp for b in n.options] == [
        ("e1/calls/endpoint", 1), ("e1/tokens/principal:sp-123", 0)]
    assert pol.has_tokens


def test_legacy_rate_limits_join_the_policy():
    pol = compile_limits("e1", None, [{"calls": 3, "renewal_period": "minute", "key": "user"},
                                      {"calls": 9, "renewal_period": "minute"}])
    assert labels(pol, CAROL) == ["3 calls per minute per user", "9 calls per minute for the endpoint"]
    assert compile_limits("e1", {}, None).empty


async def test_admit_raises_429_with_integer_retry_after_and_403_for_zero():
    clock = Clock()
    lim = MemoryLimiter(clock)
    pol = compile_limits("e1", gw({"calls": 2, "key": "user"}), None)
    await admit(lim, pol, CAROL, "ep")
    clock.t += 0.4
    await admit(lim, pol, CAROL, "ep")
    clock.t += 10.0
    with pytest.raises(RateLimited) as e:
        await admit(lim, pol, CAROL, "ep")
    assert e.value.status == 429 and e.value.error_code == "REQUEST_LIMIT_EXCEEDED"
    assert e.value.headers["Retry-After"] == "50"            # 60 - 10.4 = 49.6 -> 50
    assert "2 calls per minute per user" in e.value.message
    await admit(lim, pol, ALICE, "ep")                        # other users have their own window
    blocked = compile_limits("e1", gw({"calls": 0}), None)
    with pytest.raises(RateLimited) as e:
        await admit(lim, blocked, CAROL, "ep")
    assert e.value.status == 403 and e.value.error_code == "PERMISSION_DENIED"
