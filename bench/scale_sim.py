"""How many gateway processes, replicas and Redis shards for a request rate: the
discrete-event model of `bench/scale_model.py` and `bench/scale_limit.py`, fed with the
costs `bench/scale_costs.py` measured (`bench/scale_costs.json`), over grids up to 100
gateway processes and 10k requests/s per endpoint. Prints the tables `docs/scale.md` quotes.

    .venv/bin/python -m bench.scale_sim [--costs bench/scale_costs.json] [--quick] [--only T,...]

Tables: costs, gateways, workers, replicas, redis, fleet, limits. A simulation, not a measurement:
what it says is as good as the costs and the model (each module's docstring says what is
modelled; what is left out is in docs/scale.md).
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from bench.scale_limit import MODES, LimitScenario, exactness
from bench.scale_model import Costs, Result, Scenario, simulate

DEFAULT_COSTS = Path(__file__).with_name("scale_costs.json")
TABLES = ("costs", "gateways", "workers", "replicas", "redis", "fleet", "limits")
RATE = 10_000.0


def _table(title: str, cols: list[str]) -> Table:
    t = Table(title=title)
    for c in cols:
        t.add_column(c, justify="right")
    return t


def _res_cells(r: Result) -> list[str]:
    sat = " (saturated)" if r.saturated else ""
    return [f"{r.done:,.0f}{sat}", f"{r.p50_ms:.1f}", f"{r.p99_ms:.1f}", f"{r.gateway_util:.0%}",
            f"{r.redis_util:.0%}"]


def costs_table(c: Costs, raw: dict) -> Table:
    loads = ", ".join(f"{k} {raw[k]['loadavg_before'][0]:.1f}" for k in ("gateway", "limiter", "replica")
                      if "loadavg_before" in raw.get(k, {}))
    t = _table(f"measured costs ({raw.get('date', '?')}, commit {raw.get('commit', '?')}, "
               f"{raw.get('cpus', '?')} CPUs; load average: {loads})", ["cost", "value"])
    t.add_row("gateway CPU per request (external model, no limit)", f"{c.gateway_s * 1000:.3f} ms")
    t.add_row("+ gateway CPU for the Redis limiter call", f"{c.limiter_cpu_s * 1000:.3f} ms")
    t.add_row("Redis time per limiter script (2 buckets)", f"{c.redis_s * 1e6:.1f} us")
    lim = raw.get("limiter", {})
    t.add_row("limiter round trip, Unix socket p50 / p99",
              f"{lim.get('p50_ms', math.nan):.3f} / {lim.get('p99_ms', math.nan):.3f} ms")
    t.add_row("replica predict of b rows (fit)", f"{c.batch_a_s * 1000:.2f} ms + {c.batch_b_s * 1e6:.1f} us x b, "
              f"cv {c.batch_cv:.2f}")
    per_gw = 1 / (c.gateway_s + c.limiter_cpu_s)
    t.add_row("one gateway process at 100% CPU (rate-limited / not)", f"{per_gw:,.0f} / {1 / c.gateway_s:,.0f} req/s")
    t.add_row("one Redis shard at 100%", f"{1 / c.redis_s:,.0f} scripts/s")
    t.add_row("worker processes: the server process per rate-limited request (its limiter call; assumed)",
              f"{c.server_limit_s * 1000:.3f} ms: at most {1 / c.server_limit_s:,.0f} limited req/s per server")
    return t


def gateways_table(c: Costs, q: bool) -> Table:
    t = _table("one endpoint, 10k req/s, rate-limited, 8 replicas: gateway processes",
               ["gateways", "done req/s", "p50 ms", "p99 ms", "gateway CPU", "Redis"])
    for g in (4, 6, 8, 12, 16, 32, 100):
        r = simulate(Scenario(rate=RATE, gateways=g, replicas=8, duration_s=0.3 if q else 1.0), c)
        t.add_row(str(g), *_res_cells(r))
    return t


def workers_table(c: Costs, q: bool) -> Table:
    t = _table("one endpoint, 10k req/s, 32 gateway processes, 8 replicas: processes per server "
               "(>1: worker processes, their limits and counts through the server process)",
               ["per server", "servers", "limited", "done req/s", "p50 ms", "p99 ms", "worker CPU", "server process"])
    for limited in (False, True):
        for per in (1, 2, 4, 8, 16):
            r = simulate(Scenario(rate=RATE, gateways=32, per_server=per, replicas=8, rate_limited=limited,
                                  duration_s=0.3 if q else 1.0), c)
            sat = " (saturated)" if r.saturated else ""
            t.add_row(str(per), str(-(-32 // per)), "yes" if limited else "no", f"{r.done:,.0f}{sat}",
                      f"{r.p50_ms:.1f}", f"{r.p99_ms:.1f}", f"{r.gateway_util:.0%}",
                      f"{r.server_util:.0%}" if per > 1 else "-")
    return t


def replicas_table(c: Costs, q: bool) -> Table:
    t = _table("one endpoint, 10k req/s, 16 gateways: replicas and how a gateway picks one",
               ["replicas", "routing", "done req/s", "p50 ms", "p99 ms", "rows/predict", "busiest replica"])
    for n in (1, 2, 4, 8, 16):
        for routing in ("first", "random", "shared"):
            r = simulate(Scenario(rate=RATE, gateways=16, replicas=n, routing=routing,
                                  duration_s=0.3 if q else 1.0), c)
            sat = " (saturated)" if r.saturated else ""
            t.add_row(str(n), routing, f"{r.done:,.0f}{sat}", f"{r.p50_ms:.1f}", f"{r.p99_ms:.1f}",
                      f"{r.batch_mean:.1f}", f"{r.busiest_share:.0%}")
    return t


def redis_table(c: Costs, q: bool) -> Table:
    t = _table("one endpoint, 10k req/s, 16 gateways, 4 replicas: Redis round trip",
               ["Redis RTT ms", "done req/s", "p50 ms", "p99 ms", "gateway CPU", "Redis"])
    base = simulate(Scenario(rate=RATE, gateways=16, replicas=4, rate_limited=False, duration_s=0.3 if q else 1.0), c)
    t.add_row("no limit", *_res_cells(base))
    for rtt in (0.1, 0.5, 1.0, 2.0, 5.0):
        r = simulate(Scenario(rate=RATE, gateways=16, replicas=4, redis_rtt_s=rtt / 1000,
                              duration_s=0.3 if q else 1.0), c)
        t.add_row(f"{rtt:g}", *_res_cells(r))
    return t


def fleet_table(c: Costs, q: bool) -> Table:
    per_gw = 1 / (c.gateway_s + c.limiter_cpu_s)
    endpoints = max(1, int(100 * 0.7 * per_gw // RATE))
    t = _table(f"100 gateway processes, {endpoints} endpoints x 10k req/s (rate-limited, 4 replicas each): "
               "Redis shards, and processes per server", ["shards", "per server", "offered req/s", "done req/s",
                                                          "p50 ms", "p99 ms", "gateway CPU", "busiest shard",
                                                          "busiest server process"])
    for shards, per in ((1, 1), (2, 1), (4, 1), (8, 1), (16, 1), (8, 2), (8, 4), (8, 16)):
        r = simulate(Scenario(rate=RATE, gateways=100, per_server=per, replicas=4, endpoints=endpoints,
                              redis_shards=shards, duration_s=0.15 if q else 0.4, warmup_s=0.1), c)
        t.add_row(str(shards), str(per), f"{r.offered:,.0f}", *_res_cells(r),
                  f"{r.server_util:.0%}" if per > 1 else "-")
    return t


def limits_table(c: Costs, q: bool) -> Table:
    t = _table("limit exactness: offered 2x the limit (1 s window), 100 gateways; admitted / limit",
               ["req/s", "Redis RTT ms", *[f"{m} sustained / worst window" for m in MODES]])
    for rate in (1_000, 10_000):
        for rtt in (0.2, 1.0, 5.0):
            cells = []
            for m in MODES:
                e = exactness(LimitScenario(mode=m, rate=rate, limit=rate // 2, gateways=100, rtt_s=rtt / 1000,
                                            redis_s=c.redis_s, duration_s=2.0 if q else 4.0))
                cells.append(f"{e.sustained:.2f} / {e.worst_window:.2f}")
            t.add_row(f"{rate:,}", f"{rtt:g}", *cells)
    return t


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m bench.scale_sim", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--costs", type=Path, default=DEFAULT_COSTS)
    ap.add_argument("--quick", action="store_true", help="shorter simulated spans (noisier p99)")
    ap.add_argument("--only", default=",".join(TABLES), help=f"comma-separated: {', '.join(TABLES)}")
    a = ap.parse_args(argv)
    only = [x.strip() for x in a.only.split(",") if x.strip()]
    unknown = set(only) - set(TABLES)
    if unknown:
        ap.error(f"unknown tables: {', '.join(sorted(unknown))}")
    raw = json.loads(a.costs.read_text())
    costs = Costs.from_json(a.costs)
    console = Console(width=160)
    builders = {"costs": lambda: costs_table(costs, raw), "gateways": lambda: gateways_table(costs, a.quick),
                "workers": lambda: workers_table(costs, a.quick),
                "replicas": lambda: replicas_table(costs, a.quick), "redis": lambda: redis_table(costs, a.quick),
                "fleet": lambda: fleet_table(costs, a.quick), "limits": lambda: limits_table(costs, a.quick)}
    for name in only:
        t0 = time.perf_counter()
        console.print(builders[name]())
        console.print(f"({name}: simulated in {time.perf_counter() - t0:.1f} s)\n")


if __name__ == "__main__":
    main()
