"""The scale simulation's core (bench/scale_model.py, bench/scale_limit.py): queueing
against theory, latencies against the costs fed in, and the rate-limit exactness model."""

import json
from pathlib import Path

import pytest

from bench.scale_limit import LimitScenario, exactness
from bench.scale_model import Costs, Scenario, fit_line, mm1_mean_wait, simulate

COSTS_JSON = Path(__file__).resolve().parents[2] / "bench" / "scale_costs.json"


def _costs(**kw) -> Costs:
    base = dict(gateway_s=0.0004, limiter_cpu_s=0.0002, redis_s=50e-6, batch_a_s=0.003, batch_b_s=20e-6,
                batch_cv=0.0, gateway_cv=0.0, redis_cv=0.0)
    return Costs(**{**base, **kw})


def test_mm1_mean_wait_within_5_percent_of_theory():
    lam, mu = 500.0, 1000.0
    theory = lam / (mu * (mu - lam))          # 1 ms
    got = mm1_mean_wait(lam, mu, n=30_000, seed=1)
    assert abs(got - theory) / theory < 0.05, (got, theory)


def test_light_load_latency_is_the_sum_of_the_costs():
    c = _costs()
    r = simulate(Scenario(rate=50, gateways=4, replicas=2, redis_rtt_s=0.001, hop_rtt_s=0.0005,
                          duration_s=4, warmup_s=0.1), c)
    alone = c.gateway_s + c.limiter_cpu_s + 0.001 + c.redis_s + 0.0005 + c.batch_a_s + c.batch_b_s
    assert r.p50_ms == pytest.approx(alone * 1000, rel=1e-6)
    assert not r.saturated and r.done == pytest.approx(50, rel=0.15)


def test_too_few_gateways_saturate():
    c = _costs()   # 0.6 ms of gateway CPU a request: one process tops out near 1,667 req/s
    r = simulate(Scenario(rate=3000, gateways=1, replicas=2, duration_s=0.5), c)
    assert r.saturated and r.gateway_util > 0.99 and r.done < 2000
    assert not simulate(Scenario(rate=3000, gateways=4, replicas=2, duration_s=0.5), c).saturated


def test_worker_processes_ask_their_server_process_for_limits():
    """Workers' rate limits go through one server process: it saturates before they do."""
    c = _costs(worker_s=0.0004, server_relay_s=0.0001, server_limit_s=0.0004)
    kw = dict(rate=4000, gateways=8, replicas=2, duration_s=0.3)
    one = simulate(Scenario(per_server=8, rate_limited=True, **kw), c)     # one server: 2,000 limited req/s at most
    assert one.saturated and one.server_util > 0.98 and one.gateway_util < 0.5
    assert not simulate(Scenario(per_server=8, rate_limited=False, **kw), c).saturated
    assert not simulate(Scenario(per_server=2, rate_limited=True, **kw), c).saturated


def test_first_in_list_routing_piles_onto_the_first_replica():
    """The pool's least-loaded pick only sees its own process's requests; with many processes
    the ties go to the first replica (random tie-breaking spreads them)."""
    c = _costs(batch_cv=0.3, gateway_cv=0.5)
    first = simulate(Scenario(rate=2000, gateways=50, replicas=4, routing="first", duration_s=0.5), c)
    rand = simulate(Scenario(rate=2000, gateways=50, replicas=4, routing="random", duration_s=0.5), c)
    assert first.busiest_share > 0.8 > 0.4 > rand.busiest_share


def test_the_lua_limiter_is_exact_and_read_then_write_overshoots():
    kw = dict(rate=2000, limit=500, gateways=20, rtt_s=0.001, duration_s=2.0, warmup_s=1.0)
    lua = exactness(LimitScenario(mode="lua", **kw))
    assert lua.worst_window <= 1.0 and lua.sustained == pytest.approx(1.0, abs=0.03)
    getset = exactness(LimitScenario(mode="token-getset", **kw))
    assert getset.sustained > 1.3
    split = exactness(LimitScenario(mode="local-split", **kw))
    assert split.worst_window <= 1.0
    fixed = exactness(LimitScenario(mode="fixed-incr", **kw))     # exact per fixed window
    assert fixed.sustained == pytest.approx(1.0, abs=0.03)


def test_fit_line_and_the_committed_costs():
    assert fit_line([(1, 3.0), (2, 5.0), (3, 7.0)]) == pytest.approx((1.0, 2.0))
    assert fit_line([(1, 5.0), (2, 3.0)]) == (4.0, 0.0)      # a cheaper bigger batch: flat
    raw = json.loads(COSTS_JSON.read_text())
    c = Costs.from_json(COSTS_JSON)
    assert raw["date"] and 0 < c.gateway_s < 0.01 and 0 < c.redis_s < 0.001 and c.batch_a_s > 0
