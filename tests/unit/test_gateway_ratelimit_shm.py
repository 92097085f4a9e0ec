"""The shared-memory rate limiter: the same answers as the in-process one, exact across
processes that inherit its table, and a full table refused clearly (the common limiter
behaviour is tested for every kind in test_gateway_ratelimit.py)."""

from __future__ import annotations

import math
import os
import random
import subprocess
import sys

import pytest

from ladle.gateway.ratelimit import Bucket, MemoryLimiter, Need, admit, compile_limits
from ladle.gateway.ratelimit_shm import LimiterFull, SharedLimiter
from ladle.schemas.errors import ApiError
from ladle.schemas.principal import Principal
from limiter_support import Clock, calls, same_step


async def test_answers_as_the_memory_limiter_on_a_random_trace_with_slots_reused():
    """More buckets than slots over time (windows empty and their slots go to new keys),
    ticks merged, rings wrapping: every wait and refused need as MemoryLimiter's."""
    rng = random.Random(11)
    clock = Clock()
    mem = MemoryLimiter(clock)
    shm = SharedLimiter.create(slots=8, capacity=64, clock=clock)
    try:
        for step in range(3000):
            clock.t += rng.choice([0.0, 0.0004, 0.002, 0.01, 0.7, 5.0, 31.0])
            names = [f"b{(step // 300) * 3 + i}" for i in range(4)]   # new keys as time goes on
            buckets = [Bucket(n, (hash(n) % 5) * 4) for n in names]
            await same_step(rng, buckets, mem, shm, 1e-9, step)
        assert shm.live_slots() <= 8
    finally:
        shm.close()


WORKER = """
import asyncio, sys
from ladle.gateway.ratelimit import Bucket, Need
from ladle.gateway.ratelimit_shm import SharedLimiter

async def main():
    lim = SharedLimiter(int(sys.argv[1]))
    endpoint = Need((Bucket("e/calls/endpoint", 1500),), 1, "endpoint")
    user = Need((Bucket("e/calls/principal:u", 10**6),), 1, "user")
    sys.stdin.readline()    # every process starts together
    got = [await lim.acquire([endpoint, user]) for _ in range(1000)]
    print(sum(1 for wait, _ in got if wait == 0))

asyncio.run(main())
"""


def test_processes_sharing_the_table_admit_exactly_the_limit_together():
    lim = SharedLimiter.create()
    try:
        procs = [subprocess.Popen([sys.executable, "-c", WORKER, str(lim.fd)], pass_fds=(lim.fd,),
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
                 for _ in range(3)]
        outs = [p.communicate("go\n", timeout=60)[0] for p in procs]
        assert all(p.returncode == 0 for p in procs), outs
        assert sum(int(o) for o in outs) == 1500      # 3000 asked: one budget, not one each
    finally:
        lim.close()


async def test_this_process_sees_what_the_others_counted():
    lim = SharedLimiter.create()
    other = SharedLimiter(os.dup(lim.fd))     # a second view of the same table
    try:
        need = calls("e/calls/endpoint", 3)
        assert [(await lim.acquire([need]))[0] for _ in range(2)] == [0, 0]
        await other.charge([Bucket("e/tokens/endpoint", 10)], 12)
        assert (await other.acquire([need]))[0] == 0
        wait, refused = await lim.acquire([need])
        assert 59 < wait <= 60 and refused is need
        tokens = Need((Bucket("e/tokens/endpoint", 10),), 0, "tokens")
        assert (await lim.acquire([tokens]))[1] is tokens
    finally:
        other.close()
        lim.close()


async def test_a_full_table_is_a_503_and_emptied_windows_free_their_slots():
    clock = Clock()
    lim = SharedLimiter.create(slots=4, capacity=16, clock=clock)
    try:
        for i in range(4):
            assert (await lim.acquire([calls(f"k{i}", 5)]))[0] == 0
        with pytest.raises(LimiterFull):
            await lim.acquire([calls("k4", 5)])
        pol = compile_limits("e1", {"rate_limits": [{"calls": 5, "key": "user", "renewal_period": "minute"}]},
                             None)
        with pytest.raises(ApiError) as e:
            await admit(lim, pol, Principal("someone"), "chat")
        assert e.value.status == 503 and "cannot be checked" in e.value.message
        clock.t += 60.0                      # every window empties: their slots take new keys
        for i in range(4, 8):
            assert (await lim.acquire([calls(f"k{i}", 5)]))[0] == 0
        assert lim.live_slots() == 4
        wait, _ = await lim.acquire([calls("k4", 1)])    # k4 counted from its own slot
        assert wait == pytest.approx(60.0)
    finally:
        lim.close()


async def test_a_window_longer_than_its_ring_counts_every_call_and_never_frees_early():
    """Past capacity distinct ticks the newest event absorbs the rest: the total stays exact
    and nothing expires sooner than it should (later, at worst)."""
    clock = Clock()
    lim = SharedLimiter.create(slots=2, capacity=4, clock=clock)
    try:
        need = calls("k", 10)
        for _ in range(10):
            assert (await lim.acquire([need]))[0] == 0
            clock.t += 1.0
        wait, _ = await lim.acquire([need])
        assert wait > 0 and not math.isinf(wait)
        clock.t += 60.0
        assert (await lim.acquire([need]))[0] == 0
    finally:
        lim.close()
