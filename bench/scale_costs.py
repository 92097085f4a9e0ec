"""Measure the costs the scale simulation (`bench/scale_sim.py`) is fed with, and write them
to a JSON file.

    .venv/bin/python -m bench.scale_costs [--out bench/scale_costs.json] [--duration S]

Three measurements, each on this machine:

- **limiter**: `RedisLimiter.acquire` (two buckets: the endpoint's and the caller's, as a
  request with an endpoint and a per-user limit charges) against a real redis-server on a
  Unix socket: the client's round trip (p50/p99), the Redis server's own time per script
  (`INFO commandstats`, usec_per_call of EVALSHA) and its CPU per script (`INFO cpu`, which
  a busy machine inflates less): the single-threaded Redis's capacity.
- **gateway**: a temporary `ladle server` (one gateway process, `LADLE_REDIS_URL` set) with
  an external-model endpoint in front of the fake OpenAI upstream (`bench.fake_openai`),
  loaded with wrk (unary chat, c=8): CPU seconds the server's process tree spends per request,
  without and with an endpoint and a per-user rate limit (every request then also runs the
  script), alternated twice; the round with the least CPU per request of each kind counts.
- **replica**: the benchmark's random forest (50 trees, 20 features) loaded as ladle's worker
  loads it (`PyfuncEntity`), `predict_batch` timed for batches of 1..32 one-row requests
  (the worker's adaptive batching): wall and CPU time (the thread's) per batch.

The simulation takes CPU times (CPU seconds per request, Redis CPU per script, the replica's
CPU per batch): on a shared machine they move much less with the load than wall times.

Run it on a quiet machine if you can; each part records its date and the load average around
it, and `--merge --skip ...` measures some parts again into an existing file.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import os
import secrets
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parents[1]
DEFAULT_OUT = REPO / "bench" / "scale_costs.json"
BATCHES = (1, 2, 4, 8, 16, 32)


def _pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


def _summary_ms(samples_s: list[float]) -> dict[str, float]:
    ms = [x * 1000 for x in samples_s]
    return {"n": len(ms), "mean_ms": statistics.fmean(ms), "p50_ms": _pct(ms, 50), "p99_ms": _pct(ms, 99),
            "cv": statistics.pstdev(ms) / statistics.fmean(ms)}


# -- limiter --------------------------------------------------------------------------------
async def _limiter(url: str, n: int, rounds: int) -> dict:
    import redis.asyncio

    from ladle.gateway.ratelimit import Bucket, Need
    from ladle.gateway.ratelimit_redis import RedisLimiter

    lim = RedisLimiter.from_url(url)
    admin = redis.asyncio.Redis.from_url(url)
    needs = [Need((Bucket("ep-bench/calls/endpoint", 10**9),), 1, "endpoint"),
             Need((Bucket("ep-bench/calls/user:alice", 10**9),), 1, "user")]
    out = []
    try:
        for _ in range(200):
            await lim.acquire(needs)
        for _ in range(rounds):
            await admin.config_resetstat()
            cpu0 = await admin.info("cpu")
            lat = []
            for _ in range(n):
                t0 = time.perf_counter()
                wait, _need = await lim.acquire(needs)
                lat.append(time.perf_counter() - t0)
                assert wait == 0.0
            stats = await admin.info("commandstats")
            cpu1 = await admin.info("cpu")
            ev = stats.get("cmdstat_evalsha") or stats.get("cmdstat_eval") or {}
            cpu_s = sum(float(cpu1[k]) - float(cpu0[k]) for k in ("used_cpu_user", "used_cpu_sys"))
            out.append({**_summary_ms(lat), "redis_usec_per_call": float(ev.get("usec_per_call", 0.0)),
                        "redis_cpu_us_per_call": cpu_s * 1e6 / n})
    finally:
        await admin.aclose()
        await lim.aclose()
    best = min(out, key=lambda r: r["redis_cpu_us_per_call"])
    return {**best, "rounds": out, "buckets_per_call": 2, "transport": "unix socket",
            "note": "the round with the least Redis CPU per script (neighbours inflate the others)"}


def measure_limiter(tmp: Path, n: int, rounds: int = 5) -> dict:
    from ladle.testing.redis_server import redis_server

    with redis_server(tmp / "redis") as url:
        return asyncio.run(_limiter(url, n, rounds))


# -- gateway --------------------------------------------------------------------------------
LIMITS = {"rate_limits": [{"calls": 10**9, "key": "endpoint", "renewal_period": "minute"},
                          {"calls": 10**9, "key": "user", "renewal_period": "minute"}]}
API = "/api/2.0/serving-endpoints"


def _role(p: psutil.Process, root: psutil.Process) -> str:
    if p.pid == root.pid:
        return "server"
    try:
        return "worker" if "ladle.app_worker" in " ".join(p.cmdline()) else "other"
    except psutil.Error:
        return "other"


def _tree_cpu(root: psutil.Process) -> dict[int, tuple[str, float]]:
    out = {}
    for p in [root, *root.children(recursive=True)]:
        try:
            t = p.cpu_times()
            out[p.pid] = (_role(p, root), t.user + t.system)
        except psutil.Error:
            pass
    return out


def _wrk_cell(wrk: str, url: str, script: Path, conc: int, duration: float, root: psutil.Process) -> dict:
    from bench.load import run_wrk

    before = _tree_cpu(root)
    r = run_wrk(wrk, url, script, conc, duration)
    after = _tree_cpu(root)
    ok = max(r.requests - r.failed, 1)
    by_role: dict[str, float] = {}
    for pid, (role, v) in after.items():
        by_role[role] = by_role.get(role, 0.0) + v - before.get(pid, (role, 0.0))[1]
    cpu = sum(by_role.values())
    return {"requests": r.requests, "failed": r.failed, "rps": r.rps, "p50_ms": r.p50_ms, "p99_ms": r.p99_ms,
            "cpu_s": cpu, "cpu_ms_per_request": 1000 * cpu / ok, "concurrency": conc,
            "cpu_ms_per_request_by_process": {k: 1000 * v / ok for k, v in by_role.items()}}


# (A server with worker processes is not measured here: the server process accepts
# connections too, so its CPU mixes requests it serves with those its workers relay.)


@contextlib.contextmanager
def _chat_server(tmp: Path, name: str, redis_url: str, upstream_url: str, workers: int):
    """A ladle server (`workers` gateway processes) with an external-model endpoint in front of
    the fake upstream; yields (server, invocations URL, wrk script)."""
    from bench.load import wrk_script
    from ladle.testing.process import LadleProcess

    token = "dapi-scale-" + secrets.token_hex(8)
    srv = LadleProcess(tmp / name, token, {"LADLE_REDIS_URL": redis_url, "LADLE_FOUNDATION_ENDPOINTS": "false",
                                           "LADLE_GATEWAY_WORKERS": str(workers)}, cwd=REPO)
    try:
        srv.start()
        ext = {"provider": "openai", "name": "fake-gpt", "task": "llm/v1/chat",
               "openai_config": {"openai_api_base": upstream_url + "/v1", "openai_api_key_plaintext": "sk-bench"}}
        with srv.client(timeout=60) as c:
            c.post(API, json={"name": "scale-chat", "config": {"served_entities": [
                {"name": "fake-chat", "external_model": ext}]}}).raise_for_status()
            deadline = time.monotonic() + 60
            while c.get(f"{API}/scale-chat").json()["state"]["ready"] != "READY":
                if time.monotonic() > deadline:
                    raise RuntimeError("scale-chat not READY:\n" + srv.output(3000))
                time.sleep(0.1)
        body = tmp / f"{name}-chat.json"
        body.write_bytes(json.dumps({"messages": [{"role": "user", "content": "hi"}], "max_tokens": 8}).encode())
        script = tmp / f"{name}-chat.lua"
        script.write_text(wrk_script(body, {"Content-Type": "application/json", "Authorization": f"Bearer {token}"}))
        yield srv, f"{srv.url}/serving-endpoints/scale-chat/invocations", script
    finally:
        srv.stop()


def _set_limits(srv, body_json: dict) -> None:
    with srv.client(timeout=60) as c:
        c.put(f"{API}/scale-chat/ai-gateway", json=body_json).raise_for_status()


def measure_gateway(tmp: Path, duration: float, rounds: int = 2) -> dict:
    from bench.load import find_wrk, run_wrk
    from bench.procs import FakeUpstream
    from ladle.testing.redis_server import redis_server

    wrk = find_wrk()
    if not wrk:
        return {"error": "wrk not installed"}
    cells: dict[str, list[dict]] = {"plain": [], "rate_limited": []}
    with redis_server(tmp / "redis-gw") as rurl:
        up = FakeUpstream(tmp / "upstream.log")
        up.start()
        try:
            with _chat_server(tmp, "one", rurl, up.url, 1) as (srv, url, script):
                root = psutil.Process(srv.proc.proc.pid)
                run_wrk(wrk, url, script, 8, 2)     # warm-up
                for _ in range(rounds):     # alternated, so a busy neighbour hits both alike
                    for name, body_json in (("plain", {"rate_limits": []}), ("rate_limited", LIMITS)):
                        _set_limits(srv, body_json)
                        run_wrk(wrk, url, script, 8, 1)
                        cells[name].append(_wrk_cell(wrk, url, script, 8, duration, root))
        finally:
            up.stop()
    plain, limited = (min(cells[n], key=lambda r: r["cpu_ms_per_request"]) for n in ("plain", "rate_limited"))
    return {"endpoint": "external model (fake OpenAI upstream, unary chat), c=8", "plain": plain,
            "rate_limited": limited, "rounds": cells,
            "note": "the round with the least CPU per request of each kind",
            "limiter_cpu_ms_per_request": limited["cpu_ms_per_request"] - plain["cpu_ms_per_request"]}


# -- replica --------------------------------------------------------------------------------
def measure_replica(tmp: Path, reps: int) -> dict:
    import mlflow.sklearn
    from mlflow.models import infer_signature
    from sklearn.ensemble import RandomForestClassifier

    from bench.models import _skops_trust, body, make_data
    from ladle.entities.mlflow_pyfunc import PyfuncEntity

    data = make_data()
    est = RandomForestClassifier(n_estimators=50, random_state=0).fit(data.x, data.y)
    model_dir = tmp / "rf"
    mlflow.sklearn.save_model(est, str(model_dir), signature=infer_signature(data.x, est.predict(data.x.head(5))),
                              **_skops_trust(mlflow.sklearn.save_model))
    ent = PyfuncEntity.load(str(model_dir))
    meta = {"content_type": "application/json", "path": "invocations"}
    bodies = [body(data, i, 1) for i in range(64)]
    out = {}
    for b in BATCHES:
        items = [(meta, bodies[i % 64]) for i in range(b)]
        for _ in range(20):
            ent.predict_batch(items)
        ts, cpu = [], []
        for _ in range(max(30, reps // b)):
            t0, c0 = time.perf_counter(), time.thread_time()
            res = ent.predict_batch(items)
            cpu.append(time.thread_time() - c0)
            ts.append(time.perf_counter() - t0)
            assert all(r[0] == 200 for r in res), res[:1]
        out[str(b)] = {**_summary_ms(ts), "cpu": _summary_ms(cpu)}
    return {"model": "RandomForestClassifier(50 trees), 1-row requests, PyfuncEntity.predict_batch",
            "batch": out}


def _commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True,
                              text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m bench.scale_costs", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    ap.add_argument("--duration", type=float, default=6.0, help="seconds per gateway load cell")
    ap.add_argument("--limiter-calls", type=int, default=2000, help="calls per round (5 rounds)")
    ap.add_argument("--replica-reps", type=int, default=600)
    ap.add_argument("--skip", default="", help="comma-separated parts to leave out: limiter,gateway,replica")
    ap.add_argument("--merge", action="store_true",
                    help="replace only the parts measured now in an existing --out (each part keeps its own date)")
    a = ap.parse_args(argv)
    skip = {s.strip() for s in a.skip.split(",") if s.strip()}
    tmp = Path(tempfile.mkdtemp(prefix="ladle-scale-costs-"))
    res: dict = json.loads(a.out.read_text()) if a.merge and a.out.exists() else {}
    res.update({"cpus": os.cpu_count(), "commit": _commit()})
    parts = {"limiter": lambda: measure_limiter(tmp, a.limiter_calls),
             "replica": lambda: measure_replica(tmp, a.replica_reps),
             "gateway": lambda: measure_gateway(tmp, a.duration)}
    for name, measure in parts.items():
        if name in skip:
            continue
        when = {"date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
                "loadavg_before": list(os.getloadavg())}
        res[name] = {**measure(), **when, "loadavg_after": list(os.getloadavg())}
        print(f"{name}:", json.dumps(res[name]), flush=True)
    res["date"] = max(v["date"] for k, v in res.items() if k in parts)
    a.out.write_text(json.dumps(res, indent=1) + "\n")
    print(f"wrote {a.out} (work files in {tmp})")


if __name__ == "__main__":
    main()
