"""How exact a rate limit shared by N gateway processes through Redis is: a discrete-event
model (SimPy) of four ways to count, with Redis a single-threaded server `rtt_s` away.

- `lua`: ladle's `RedisLimiter`: one script checks and charges a sliding window atomically
  at Redis (admit when fewer than `limit` were admitted in the last `window_s`).
- `token-getset`: a token bucket (capacity `limit`, refilled at limit/window) kept in Redis
  by read-decide-write: GET the bucket, decide in the gateway, SET what it read minus one.
  Reads that overlap a write's round trip see the same tokens; their writes overwrite each
  other (lost updates), so it over-admits by about the requests in flight to Redis.
- `fixed-incr`: one counter per fixed window, INCR and admit when the answer is <= limit
  (atomic, exact per window, but a sliding span across a boundary sees up to twice the limit).
- `local-split`: each gateway process counts alone with limit / N (no Redis at all): never
  over, but under-admits when the load balancer's split is uneven.

`exactness()` returns the admitted rate over the limit's rate in steady state and the most
requests admitted in any sliding window over the limit.
"""

from __future__ import annotations

import bisect
import random
from collections import deque
from dataclasses import dataclass

import simpy

from bench.scale_model import Station

MODES = ("lua", "token-getset", "fixed-incr", "local-split")


@dataclass
class LimitScenario:
    mode: str
    rate: float              # requests/s offered (Poisson), over every gateway
    limit: int               # requests per window
    gateways: int = 10
    rtt_s: float = 0.0002    # gateway <-> Redis round trip
    redis_s: float = 40e-6   # Redis service time per command or script
    window_s: float = 1.0
    duration_s: float = 8.0
    warmup_s: float = 2.0
    seed: int = 1


@dataclass
class Exactness:
    sustained: float         # admitted per second / (limit / window) in steady state
    worst_window: float      # most admitted in any window_s span (steady state) / limit
    admitted: int
    offered: int


class _SlidingLog:
    """Admission times inside the window (the script's sorted set)."""

    def __init__(self, window_s: float) -> None:
        self.window_s, self.times = window_s, deque()

    def count(self, now: float) -> int:
        while self.times and self.times[0] + self.window_s <= now:
            self.times.popleft()
        return len(self.times)


def exactness(sc: LimitScenario) -> Exactness:
    if sc.mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}")
    rng = random.Random(sc.seed)
    env = simpy.Environment()
    redis = Station(env, rng, cv=0.3)
    admitted: list[float] = []
    offered = [0]
    rho = sc.limit / sc.window_s
    log = _SlidingLog(sc.window_s)
    bucket = {"tokens": float(sc.limit), "at": 0.0}
    counters: dict[int, int] = {}
    split = [_SlidingLog(sc.window_s) for _ in range(sc.gateways)]
    share = sc.limit / sc.gateways

    def refilled(now: float) -> float:
        return min(float(sc.limit), bucket["tokens"] + (now - bucket["at"]) * rho)

    def request():
        offered[0] += 1
        g = rng.randrange(sc.gateways)
        if sc.mode == "local-split":
            if split[g].count(env.now) < share:
                split[g].times.append(env.now)
                admitted.append(env.now)
            return
        yield env.timeout(sc.rtt_s / 2)
        yield from redis.serve(sc.redis_s)
        now = env.now
        if sc.mode == "lua":
            ok = log.count(now) < sc.limit
            if ok:
                log.times.append(now)
        elif sc.mode == "fixed-incr":
            w = int(now // sc.window_s)
            counters[w] = counters.get(w, 0) + 1
            ok = counters[w] <= sc.limit
        else:   # token-getset: the value read now, written back a round trip later
            seen = refilled(now)
            ok = seen >= 1.0
        yield env.timeout(sc.rtt_s / 2)
        if ok:
            admitted.append(env.now)
        if ok and sc.mode == "token-getset":
            yield env.timeout(sc.rtt_s / 2)
            yield from redis.serve(sc.redis_s)
            bucket["tokens"], bucket["at"] = seen - 1.0, now   # SET: overwrites writes made meanwhile

    def arrivals():
        while True:
            yield env.timeout(rng.expovariate(sc.rate))
            env.process(request())

    env.process(arrivals())
    end = sc.warmup_s + sc.duration_s
    env.run(until=end + sc.window_s)
    steady = [t for t in admitted if sc.warmup_s <= t < end]
    return Exactness(sustained=len(steady) / sc.duration_s / rho,
                     worst_window=_worst_window(steady, sc.window_s) / sc.limit,
                     admitted=len(steady), offered=offered[0])


def _worst_window(sorted_times: list[float], window_s: float) -> int:
    """The most events in any half-open span [t, t + window_s)."""
    best = 0
    for i, t in enumerate(sorted_times):
        j = bisect.bisect_left(sorted_times, t + window_s, lo=i)
        best = max(best, j - i)
    return best
