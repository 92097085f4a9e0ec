"""The request path as a discrete-event model (SimPy), fed with costs measured by
`bench/scale_costs.py`. `bench/scale_sim.py` runs it over grids and prints the tables.

One request: a load balancer picks a gateway process at random; the gateway spends half its
CPU cost (one core per process: a FIFO station), asks Redis (network round trip + the
single-threaded Redis's service time per script; endpoints spread over shards) when the
endpoint is rate limited, picks a replica, crosses the network to it, waits for the
replica's next batch (a replica takes every request waiting, up to `max_batch`, and serves
them in one predict whose time depends on the batch size), crosses back, and the gateway
spends the other half of its cost. With worker processes (`per_server` > 1) a worker's
rate-limit question goes through its server's process (one more FIFO station per server,
which also spends time on every request's relayed counts and rows, off the request's path).

Replica choice (`routing`):
- `first`: what `ReplicaPool.call` does: the replica this gateway process has the fewest
  requests in flight on, ties to the first in the list. Each process knows only its own
  requests, so with many processes the counts are mostly 0 and the first replica is picked.
- `random`: the same with ties broken at random.
- `shared`: an ideal shared queue (every replica's real load known to every gateway).
"""

from __future__ import annotations

import json
import math
import random
from dataclasses import dataclass, field
from pathlib import Path

import simpy

ROUTINGS = ("first", "random", "shared")
TAIL_S = 0.2


def gamma(rng: random.Random, mean: float, cv: float) -> float:
    """A service time with this mean and coefficient of variation (cv 1: exponential)."""
    if mean <= 0:
        return 0.0
    if cv <= 0:
        return mean
    k = 1.0 / (cv * cv)
    return rng.gammavariate(k, mean / k)


class Station:
    """One server, FIFO, unbounded queue: a gateway process's event loop, a Redis shard."""

    def __init__(self, env: simpy.Environment, rng: random.Random, cv: float) -> None:
        self.env, self.rng, self.cv = env, rng, cv
        self.res = simpy.Resource(env, capacity=1)
        self.busy = 0.0

    def serve(self, mean: float):
        with self.res.request() as req:
            yield req
            t = gamma(self.rng, mean, self.cv)
            self.busy += t
            yield self.env.timeout(t)


class Replica:
    """A worker that predicts batches: everything waiting (up to max_batch) in one call."""

    def __init__(self, env: simpy.Environment, rng: random.Random, costs: "Costs", max_batch: int) -> None:
        self.env, self.rng, self.costs, self.max_batch = env, rng, costs, max_batch
        self.queue: list[simpy.Event] = []
        self.wake = env.event()
        self.busy = 0.0
        self.batches = self.rows = 0
        self.load = 0          # requests queued or being served (what `shared` routing sees)
        env.process(self._run())

    def submit(self) -> simpy.Event:
        done = self.env.event()
        self.queue.append(done)
        self.load += 1
        if not self.wake.triggered:
            self.wake.succeed()
        return done

    def _run(self):
        while True:
            if not self.queue:
                self.wake = self.env.event()
                yield self.wake
            batch, self.queue = self.queue[:self.max_batch], self.queue[self.max_batch:]
            mean, cv = self.costs.batch_time(len(batch))
            t = gamma(self.rng, mean, cv)
            self.busy += t
            self.batches, self.rows = self.batches + 1, self.rows + len(batch)
            yield self.env.timeout(t)
            self.load -= len(batch)
            for ev in batch:
                ev.succeed()


@dataclass
class Costs:
    """Seconds. A replica's predict of b rows takes `batch_a_s + batch_b_s * b` on average
    (a least-squares line through the measured median CPU time of each batch size: neighbours
    on a shared machine inflate the mean), with `batch_cv`."""
    gateway_s: float
    limiter_cpu_s: float
    redis_s: float
    batch_a_s: float
    batch_b_s: float
    batch_cv: float = 0.3
    gateway_cv: float = 0.5
    redis_cv: float = 0.3
    # With gateway worker processes (LADLE_GATEWAY_WORKERS > 1): a worker's CPU per request,
    # and the server process's per request (relayed counts and rows) and per rate-limited
    # request (the worker asks the server's limiter, which asks Redis)
    worker_s: float = 0.0
    server_relay_s: float = 0.0
    server_limit_s: float = 0.0

    def batch_time(self, b: int) -> tuple[float, float]:
        return self.batch_a_s + self.batch_b_s * b, self.batch_cv

    @classmethod
    def from_json(cls, path: Path) -> Costs:
        d = json.loads(Path(path).read_text())
        g = d["gateway"]
        pts = [(int(k), v["cpu"]["p50_ms"] / 1000, v["cpu"]["cv"]) for k, v in d["replica"]["batch"].items()]
        a, b = fit_line([(x, y) for x, y, _ in pts])
        return cls(gateway_s=g["plain"]["cpu_ms_per_request"] / 1000,
                   limiter_cpu_s=max(0.0, g["limiter_cpu_ms_per_request"]) / 1000,
                   redis_s=d["limiter"]["redis_cpu_us_per_call"] / 1e6, batch_a_s=a, batch_b_s=b,
                   batch_cv=sum(c for _, _, c in pts) / len(pts))

    def __post_init__(self) -> None:
        # Not measured (see bench/scale_costs.py): a worker costs what a lone gateway process
        # does, and its server process spends on each rate-limited request at least the
        # limiter call it makes for the worker (the link's own cost is left out).
        self.worker_s = self.worker_s or self.gateway_s
        self.server_limit_s = self.server_limit_s or self.limiter_cpu_s


def fit_line(pts: list[tuple[float, float]]) -> tuple[float, float]:
    """Least squares y = a + b x, the slope floored at 0 (a bigger batch never costs less)."""
    n = len(pts)
    mx, my = sum(x for x, _ in pts) / n, sum(y for _, y in pts) / n
    sxx = sum((x - mx) ** 2 for x, _ in pts)
    b = max(0.0, sum((x - mx) * (y - my) for x, y in pts) / sxx) if sxx else 0.0
    return (my - b * mx if b else my), b


@dataclass
class Scenario:
    rate: float                  # requests/s offered to each endpoint (Poisson)
    gateways: int                # gateway processes, all endpoints share them
    replicas: int                # per endpoint
    per_server: int = 1          # gateway processes per server: >1 are worker processes whose
                                 # rate limits, counts and rows go through their server's process
    endpoints: int = 1
    rate_limited: bool = True
    redis_rtt_s: float = 0.0002  # gateway <-> Redis network round trip
    redis_shards: int = 1        # endpoints spread over shards (Redis Cluster, one slot per endpoint)
    hop_rtt_s: float = 0.0001    # gateway <-> replica network round trip
    routing: str = "first"
    max_batch: int = 64
    duration_s: float = 1.0
    warmup_s: float = 0.2
    seed: int = 1


@dataclass
class Result:
    offered: float               # requests/s, all endpoints (nominal)
    arrived: float               # requests/s that arrived in the measured span
    done: float                  # requests/s completed in the measured span
    p50_ms: float
    p99_ms: float
    gateway_util: float          # mean over gateway processes
    server_util: float           # the busiest server process (with worker processes)
    redis_util: float            # the busiest shard
    batch_mean: float            # requests per replica predict
    busiest_share: float         # the busiest replica's share of its endpoint's requests (1/replicas: even)
    latencies: list[float] = field(default_factory=list, repr=False)

    @property
    def saturated(self) -> bool:
        """Falling behind: fewer answered than arrived, or a station busy all the time."""
        return self.done < 0.97 * self.arrived or max(self.gateway_util, self.redis_util,
                                                      self.server_util) > 0.98


def simulate(sc: Scenario, costs: Costs) -> Result:
    if sc.routing not in ROUTINGS:
        raise ValueError(f"routing must be one of {ROUTINGS}")
    rng = random.Random(sc.seed)
    env = simpy.Environment()
    gws = [Station(env, rng, costs.gateway_cv) for _ in range(sc.gateways)]
    workers = sc.per_server > 1
    servers = [Station(env, rng, costs.gateway_cv) for _ in range(-(-sc.gateways // sc.per_server))]
    redis = [Station(env, rng, costs.redis_cv) for _ in range(sc.redis_shards)]
    reps = [[Replica(env, rng, costs, sc.max_batch) for _ in range(sc.replicas)] for _ in range(sc.endpoints)]
    # per gateway, per endpoint: this process's own in-flight count on each replica
    local = [[[0] * sc.replicas for _ in range(sc.endpoints)] for _ in range(sc.gateways)]
    lat: list[float] = []
    counts = {"arrived": 0, "done": 0}      # inside the measured span [warmup_s, end)
    end = sc.warmup_s + sc.duration_s
    half = (costs.worker_s if workers else costs.gateway_s) / 2
    pre = half + (costs.limiter_cpu_s if sc.rate_limited and not workers else 0.0)

    def pick(g: int, e: int) -> int:
        if sc.routing == "shared":
            loads = [r.load for r in reps[e]]
        else:
            loads = local[g][e]
        low = min(loads)
        if sc.routing == "first":
            return loads.index(low)
        return rng.choice([i for i, x in enumerate(loads) if x == low])

    def request(e: int):
        t0 = env.now
        if sc.warmup_s <= t0 < end:
            counts["arrived"] += 1
        g = rng.randrange(sc.gateways)
        yield from gws[g].serve(pre)
        if workers:   # counts and rows reach the server in batches: its time, not the request's
            env.process(servers[g // sc.per_server].serve(costs.server_relay_s))
            if sc.rate_limited:
                yield from servers[g // sc.per_server].serve(costs.server_limit_s)
        if sc.rate_limited:
            yield env.timeout(sc.redis_rtt_s / 2)
            yield from redis[e % sc.redis_shards].serve(costs.redis_s)
            yield env.timeout(sc.redis_rtt_s / 2)
        i = pick(g, e)
        local[g][e][i] += 1
        yield env.timeout(sc.hop_rtt_s / 2)
        yield reps[e][i].submit()
        yield env.timeout(sc.hop_rtt_s / 2)
        local[g][e][i] -= 1
        yield from gws[g].serve(half)
        if sc.warmup_s <= t0 < end:
            lat.append(env.now - t0)
        if sc.warmup_s <= env.now < end:
            counts["done"] += 1

    def arrivals(e: int):
        while True:
            yield env.timeout(rng.expovariate(sc.rate))
            env.process(request(e))

    for e in range(sc.endpoints):
        env.process(arrivals(e))
    env.run(until=end + TAIL_S)   # requests that arrived before the end may finish
    span = end + TAIL_S
    lat.sort()
    rows = sum(r.rows for eps in reps for r in eps)
    return Result(offered=sc.rate * sc.endpoints, arrived=counts["arrived"] / sc.duration_s,
                  done=counts["done"] / sc.duration_s,
                  p50_ms=_q(lat, 0.50) * 1000, p99_ms=_q(lat, 0.99) * 1000,
                  gateway_util=sum(g.busy for g in gws) / span / sc.gateways,
                  server_util=max(x.busy for x in servers) / span if workers else 0.0,
                  redis_util=max(r.busy for r in redis) / span if sc.rate_limited else 0.0,
                  batch_mean=rows / max(1, sum(r.batches for eps in reps for r in eps)),
                  busiest_share=max(max(r.rows for r in eps) / max(1, sum(r.rows for r in eps)) for eps in reps),
                  latencies=lat)


def _q(sorted_xs: list[float], q: float) -> float:
    if not sorted_xs:
        return math.nan
    return sorted_xs[min(len(sorted_xs) - 1, int(q * len(sorted_xs)))]


def mm1_mean_wait(lam: float, mu: float, n: int, seed: int = 1) -> float:
    """Mean time in queue (before service) of n customers through one exponential Station
    fed by Poisson arrivals: theory says lam / (mu * (mu - lam))."""
    rng = random.Random(seed)
    env = simpy.Environment()
    st = Station(env, rng, cv=1.0)
    waits: list[float] = []

    def customer():
        t0 = env.now
        with st.res.request() as req:
            yield req
            waits.append(env.now - t0)
            yield env.timeout(rng.expovariate(mu))

    def source():
        for _ in range(n):
            yield env.timeout(rng.expovariate(lam))
            env.process(customer())

    env.process(source())
    env.run()
    return sum(waits) / len(waits)
