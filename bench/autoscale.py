"""Autoscaling bench: a step load (c=1 -> c=32 -> c=1 -> idle) on a random-forest endpoint
with a Medium range and scale-to-zero (0-16 concurrent requests: 1-4 replicas of 4 under
load), the same without scale-to-zero (8-16: 2-4 replicas) and on the same model with
a fixed maximum (min = max provisioned concurrency 16: 4 replicas), one after the other on
one temporary server, then on Ray Serve's own autoscaling with the same range, target and
delays (bench/autoscale_serve.py; --no-serve skips it). Prints replicas over time, p50/p99 per
phase, failed requests, seconds to scale up and down, and replica-seconds.

    .venv/bin/python -m bench.autoscale [--low-s 10] [--peak-s 20] [--idle-s 45] [--cap 4] [--runtime ray]

The server's knobs are the defaults unless given (--down-window, --cooldown, --target);
the per-server cap is 4 by default so that a Medium range can scale on a small machine.
A benchmark, not a test: it exits 0 whatever the numbers.
"""

from __future__ import annotations

import argparse
import contextlib
import asyncio
import re
import secrets
import statistics
import tempfile
import time
from pathlib import Path

import aiohttp
import httpx

from bench import models
from bench.context import replica_count_from_metrics
from bench.procs import REPO_ROOT
from ladle.testing.process import LadleProcess
from ladle.testing.ray_cluster import ray_head

API = "/api/2.0/serving-endpoints"
ENTITY = "rf"


def parse_args(argv=None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="python -m bench.autoscale", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--low-s", type=float, default=10.0, help="seconds of each c=1 phase")
    ap.add_argument("--peak-s", type=float, default=20.0, help="seconds of the c=32 phase")
    ap.add_argument("--idle-s", type=float, default=45.0, help="seconds of the idle phase")
    ap.add_argument("--peak", type=int, default=32, help="concurrency of the peak phase")
    ap.add_argument("--cap", type=int, default=4, help="LADLE_MAX_REPLICAS_PER_ENTITY")
    ap.add_argument("--target", type=float, default=None, help="LADLE_AUTOSCALE_TARGET_IN_FLIGHT")
    ap.add_argument("--down-window", type=float, default=None, help="LADLE_AUTOSCALE_DOWN_WINDOW_S")
    ap.add_argument("--cooldown", type=float, default=None, help="LADLE_AUTOSCALE_COOLDOWN_S")
    ap.add_argument("--runtime", choices=("local", "ray"), default="local",
                    help="LADLE_RUNTIME: local worker processes or Ray Serve (ladle drives the count)")
    ap.add_argument("--no-serve", action="store_true", help="skip the run on Ray Serve's own autoscaling")
    ap.add_argument("--no-floor-run", action="store_true",
                    help="skip the Medium run without scale-to-zero (floor of 2 replicas)")
    return ap.parse_args(argv)


async def _phase(url: str, body: bytes, headers: dict, c: int, seconds: float, name: str,
                 out: list[tuple[str, float, float, int]]) -> None:
    end = time.monotonic() + seconds

    async def worker(session: aiohttp.ClientSession) -> None:
        while time.monotonic() < end:
            t0 = time.monotonic()
            try:
                async with session.post(url, data=body, headers=headers) as r:
                    await r.read()
                    status = r.status
            except aiohttp.ClientError:
                status = 0
            out.append((name, t0, (time.monotonic() - t0) * 1000, status))

    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=120)) as s:
        await asyncio.gather(*(worker(s) for _ in range(c)))
    if c == 0:
        await asyncio.sleep(seconds)


def ladle_sampler(base: str, name: str):
    """(replicas, target) of the bench entity from the endpoint's metrics route."""
    def factory(http: httpx.AsyncClient):
        return lambda: sample(http)

    async def sample(http: httpx.AsyncClient) -> tuple[int, int]:
        r = await http.get(f"{base}{API}/{name}/metrics")
        n = replica_count_from_metrics(r.text, ENTITY) if r.status_code == 200 else None
        m = re.search(r'^replica_target_count\{served_entity="' + ENTITY + r'"\} (\S+)$', r.text, re.M)
        return n if n is not None else 0, int(float(m.group(1))) if m else 0
    return factory


async def _sampler(sample, t0: float, out: list, stop: asyncio.Event) -> None:
    while not stop.is_set():
        n, g = await sample()
        out.append((time.monotonic() - t0, n, g))
        try:
            await asyncio.wait_for(stop.wait(), 0.25)
        except asyncio.TimeoutError:
            pass


async def step_load(url: str, headers: dict, sample_factory, body: bytes, a) -> dict:
    """The step load on `url`; `sample_factory(http)` gives the (replicas, target) sampler."""
    phases = [("c=1", 1, a.low_s), (f"c={a.peak}", a.peak, a.peak_s), ("c=1 again", 1, a.low_s),
              ("idle", 0, a.idle_s)]
    reqs: list = []
    samples: list = []
    stop = asyncio.Event()
    async with httpx.AsyncClient(headers=headers, timeout=30) as http:
        t0 = time.monotonic()
        sampler = asyncio.create_task(_sampler(sample_factory(http), t0, samples, stop))
        bounds = {}
        for ph, c, secs in phases:
            start = time.monotonic() - t0
            await _phase(url, body, headers, c, secs, ph, reqs)
            bounds[ph] = (start, time.monotonic() - t0)
        stop.set()
        await sampler
    return {"phases": phases, "bounds": bounds, "reqs": reqs, "samples": samples}


def _pct(xs: list[float], q: float) -> float | None:
    if not xs:
        return None
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))]


def summarize(run: dict, peak_name: str) -> dict:
    s = [(t, n) for t, n, _ in run["samples"]]
    rs = sum((t1 - t0) * n for (t0, n), (t1, _) in zip(s, s[1:]))
    pk0, pk1 = run["bounds"][peak_name]
    top = max((n for t, n in s if pk0 <= t <= pk1), default=0)
    start = max((n for t, n in s if t <= pk0), default=0)
    up = next((t - pk0 for t, n in s if t >= pk0 and n == top), None) if top > start else None
    decided = next((t - pk0 for t, _, g in run["samples"] if t >= pk0 and g > start), None)
    low = min((n for t, n in s if t >= pk1), default=0)
    down = next((t - pk1 for t, n in s if t >= pk1 and n == low), None) if low < top else None
    per_phase = {}
    for ph, _, _ in run["phases"]:
        lat = [ms for p, _, ms, st in run["reqs"] if p == ph and st == 200]
        per_phase[ph] = (len([1 for p, *_ in run["reqs"] if p == ph]), _pct(lat, 0.5), _pct(lat, 0.99))
    return {"replica_s": rs, "up_s": up, "decided_s": decided, "down_s": down, "top": top, "low": low,
            "failed": sum(1 for *_, st in run["reqs"] if st != 200), "per_phase": per_phase}


def _timeline(samples: list, every: float = 2.0) -> str:
    """`t s: replicas/target` every `every` seconds, a line per 30 s."""
    out, nxt = [], 0.0
    for t, n, g in samples:
        if t >= nxt:
            out.append(f"{t:>4.0f}s {n}/{g}")
            nxt += every
    return "\n  ".join(" ".join(out[i:i + 15]) for i in range(0, len(out), 15))


def serve_run(ladle: LadleProcess, version: str, body: bytes, a, tmp: Path) -> dict:
    """The same step load on Ray Serve's own autoscaling: the scale-to-zero Medium range under
    load (1-4 replicas of 4), ladle's target and delays as Serve's."""
    import os

    import mlflow

    from bench.autoscale_serve import ServeRun, wait_running

    os.environ["MLFLOW_TRACKING_TOKEN"] = ladle.admin_token
    mlflow.set_tracking_uri(ladle.url)
    mlflow.set_registry_uri(ladle.url)
    model_dir = mlflow.artifacts.download_artifacts(f"models:/{models.RF}/{version}", dst_path=str(tmp / "rf"))
    from ladle.config import Settings

    knobs = Settings.model_fields
    target = a.target or knobs["autoscale_target_in_flight"].default
    down = a.cooldown or knobs["autoscale_cooldown_s"].default
    with ServeRun(model_dir, 1, min(4, a.cap), target, up_s=knobs["autoscale_up_window_s"].default,
                  down_s=down, num_cpus=2 * a.cap) as run:
        wait_running(1)
        time.sleep(3)
        print("running the step load on ray-serve (Serve's own autoscaling) ...", flush=True)
        return asyncio.run(step_load(run.url, {"Content-Type": "application/json"},
                                     lambda http: run.sampler(), body, a))


def main(argv=None) -> int:
    a = parse_args(argv)
    env = {"LADLE_MAX_REPLICAS_PER_ENTITY": str(a.cap), "LADLE_SCALE_TO_ZERO_IDLE_S": "600",
           "LADLE_RUNTIME": a.runtime}
    for flag, var in (("target", "TARGET_IN_FLIGHT"), ("down_window", "DOWN_WINDOW_S"), ("cooldown", "COOLDOWN_S")):
        if getattr(a, flag) is not None:
            env[f"LADLE_AUTOSCALE_{var}"] = str(getattr(a, flag))
    with tempfile.TemporaryDirectory(prefix="ladle-autoscale-") as tmp, contextlib.ExitStack() as stack:
        tmp = Path(tmp)
        if a.runtime == "ray":   # a Ray head of our own, stopped by its PID at the end
            env.update(stack.enter_context(ray_head(tmp / "ray", num_cpus=2 * a.cap)))
        ladle = LadleProcess(tmp / "home", "dapi-bench-" + secrets.token_hex(8), env, cwd=REPO_ROOT)
        ladle.start()
        try:
            data = models.make_data()
            versions = models.register_all(ladle.url, ladle.admin_token, data, tmp)
            rf = versions[models.RF]
            body = models.body(data, 0, 1)
            # Medium with scale-to-zero: its lower bound is 0 (1 replica under any load, 0 after
            # LADLE_SCALE_TO_ZERO_IDLE_S, which this run's idle phase does not reach); without
            # it the floor is 8 concurrent requests (2 replicas).
            ents = {"as-medium": {"workload_size": "Medium", "scale_to_zero_enabled": True},
                    "as-medium-2": {"workload_size": "Medium", "scale_to_zero_enabled": False},
                    "as-fixed": {"min_provisioned_concurrency": 16, "max_provisioned_concurrency": 16,
                                 "scale_to_zero_enabled": False}}
            if a.no_floor_run:
                del ents["as-medium-2"]
            results = {}
            with httpx.Client(base_url=ladle.url, timeout=60,
                              headers={"Authorization": f"Bearer {ladle.admin_token}"}) as http:
                for name, size in ents.items():
                    ent = {"name": ENTITY, "entity_name": models.RF, "entity_version": rf, **size}
                    r = http.post(API, json={"name": name, "config": {"served_entities": [ent]}})
                    r.raise_for_status()
                    deadline = time.monotonic() + 300
                    while http.get(f"{API}/{name}").json()["state"] != {"ready": "READY",
                                                                      "config_update": "NOT_UPDATING"}:
                        if time.monotonic() > deadline:
                            raise RuntimeError(f"{name} did not become READY")
                        time.sleep(0.2)
                    time.sleep(3)   # the warm spare refills after the first replica took it
                    print(f"running the step load on {name} ...", flush=True)
                    headers = {"Authorization": f"Bearer {ladle.admin_token}", "Content-Type": "application/json"}
                    results[name] = asyncio.run(step_load(
                        f"{ladle.url}/serving-endpoints/{name}/invocations", headers,
                        ladle_sampler(ladle.url, name), body, a))
                    logs = http.get(f"{API}/{name}/served-models/{ENTITY}/logs").json().get("logs", "")
                    results[name]["decisions"] = [ln for ln in logs.splitlines() if "autoscale:" in ln]
                    http.delete(f"{API}/{name}")
            if not a.no_serve:
                results["ray-serve"] = serve_run(ladle, rf, body, a, tmp)
        finally:
            ladle.stop()
    peak = f"c={a.peak}"
    sums = {n: summarize(r, peak) for n, r in results.items()}
    print(f"\nstep load: c=1 {a.low_s:g}s -> c={a.peak} {a.peak_s:g}s -> c=1 {a.low_s:g}s -> idle {a.idle_s:g}s; "
          f"runtime {a.runtime}; cap {a.cap} replicas; knobs "
          f"{ {k: v for k, v in env.items() if k.startswith('LADLE_AUTOSCALE_')} or 'defaults'}")
    for n, r in results.items():
        print(f"\n{n}: replicas/target over time\n  {_timeline(r['samples'])}")
        for line in r.get("decisions", []):
            print(f"  {line}")
    print(f"\n{'':10} | " + " | ".join(f"{ph:^26}" for ph, _, _ in results['as-medium']["phases"][:3]))
    for n, s in sums.items():
        print(f"{n:10} | " + " | ".join(f"{c:>6} req p50 {p50 or 0:4.0f} p99 {p99 or 0:4.0f}"
                                       for c, p50, p99 in list(s["per_phase"].values())[:3]) + "   (ms)")
    print()
    for n, s in sums.items():
        fmt = lambda x: "-" if x is None else f"{x:.1f} s"
        print(f"{n:10} failed {s['failed']}  replicas {s['low']}..{s['top']}  target raised "
              f"{fmt(s['decided_s'])} and replicas at the peak's {s['top']} {fmt(s['up_s'])} after the "
              f"step up; back to {s['low']} {fmt(s['down_s'])} after the step down; "
              f"replica-seconds {s['replica_s']:.0f}")
    f = sums["as-fixed"]
    p99f = f["per_phase"][peak][2]
    print()
    for n in [n for n in sums if n != "as-fixed"]:
        m = sums[n]
        p99m = m["per_phase"][peak][2]
        print(f"{n:10} / fixed: replica-seconds {m['replica_s'] / max(1e-9, f['replica_s']):.2f}x (goal <= 0.6x); "
              f"p99 at c={a.peak} {(p99m or 0) / max(1e-9, p99f or 0):.2f}x (goal <= 1.2x)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
