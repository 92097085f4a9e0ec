"""The external-model gateway on every core, and against LiteLLM's proxy.

`python -m bench.gateway [--duration 5] [--workers N] [--litellm PATH] [--parts ...]`

One fake OpenAI upstream (bench/fake_openai.py) behind: the upstream alone; ladle's
external-model endpoint with one serving process (LADLE_GATEWAY_WORKERS=1) and with N (one
per core by default); LiteLLM's proxy (master key set) with 1 worker and with N. For each,
chat unary and streamed: requests/s at c=1/8/32 with p50/p99 (wrk), time to the first SSE
event (p50 over sequential requests, minimal client), and the overhead over the upstream
alone (p50 at c=1 less the upstream's). Each load run also counts the CPU time of every
process (server, gateway workers, upstream, wrk) per request, and prints the load average.
The `limits` part puts a rate limit on the endpoint (every request asks the limiter): one
process, N with the shared-memory table, N asking the server, N with Redis. The `rf` part
(not in the default parts: it trains and registers models) runs the random-forest endpoint
at c=32 against `mlflow models serve` with 1 and N processes. Ratios are printed at the end.

LiteLLM is not a dependency of ladle. The bench uses `--litellm` (a `litellm` executable), or
/tmp/litellm-venv/bin/litellm, or builds that venv when `uv` is on hand:
    uv venv /tmp/litellm-venv && uv pip install --python /tmp/litellm-venv/bin/python 'litellm[proxy]'
Without it the LiteLLM rows say n/a.
"""

from __future__ import annotations

import argparse
import os
import secrets
import sys
import tempfile
import time
from pathlib import Path
from statistics import median
from typing import Any

from bench.clients import RawHttp
from bench.load import find_wrk, run_wrk, wrk_script
from bench.parts_gateway import LiteLLM, Target, litellm_exe, load_avg, measured_run, redis_server, rf_vs_mlflow
from bench.procs import REPO_ROOT, FakeUpstream
from ladle.testing.process import LadleProcess

CONCURRENCY = (1, 8, 32)


def _ladle(upstream: str, workers: int, work: Path, limited: bool = False,
           redis_url: str | None = None, limits: str = "shared") -> tuple[LadleProcess, Target]:
    token = "dapi-bench-" + secrets.token_hex(8)
    env = {"LADLE_GATEWAY_WORKERS": str(workers), "LADLE_GATEWAY_LIMITS": limits}
    if redis_url:
        env["LADLE_REDIS_URL"] = redis_url
    kind = ("redis" if redis_url else limits if workers > 1 else "memory") if limited else ""
    srv = LadleProcess(work / f"ladle-{workers}-{kind or 'plain'}", token, env, cwd=REPO_ROOT)
    srv.start()
    try:
        _chat_endpoint(srv, upstream, limited)
    except BaseException:
        srv.stop()
        raise
    name = f"ladle x{workers}" + (f" lim/{kind}" if limited else "")
    return srv, Target(name, srv.url, "/serving-endpoints/chat/invocations", None, srv.headers,
                       srv.proc.pid if srv.proc else None)


def _chat_endpoint(srv: LadleProcess, upstream: str, limited: bool) -> None:
    ext = {"provider": "openai", "name": "fake-gpt", "task": "llm/v1/chat",
           "openai_config": {"openai_api_base": upstream + "/v1", "openai_api_key_plaintext": "sk-bench"}}
    with srv.client() as c:
        r = c.post("/api/2.0/serving-endpoints", json={"name": "chat", "config": {"served_entities": [
            {"name": "fake-chat", "external_model": ext}]}})
        r.raise_for_status()
        deadline = time.monotonic() + 120
        while (st := c.get("/api/2.0/serving-endpoints/chat").json()["state"])["config_update"] != "NOT_UPDATING":
            if time.monotonic() > deadline:
                raise RuntimeError(f"the bench endpoint did not settle: {st}")
            time.sleep(0.1)
        if limited:    # a per-user call limit the load never reaches: every request asks the limiter
            c.put("/api/2.0/serving-endpoints/chat/ai-gateway", json={"rate_limits": [
                {"calls": 10**9, "key": "user", "renewal_period": "minute"}]}).raise_for_status()


def _ttft(t: Target, n: int) -> float | None:
    raw = RawHttp(t.url)
    try:
        out = []
        for i in range(n + 10):
            st, secs, _ = raw.first_event(t.path, t.body(True), t.headers)
            if st != 200:
                return None
            if i >= 10:
                out.append(secs * 1000)
        return median(out)
    finally:
        raw.close()


def measure(t: Target, wrk: str, work: Path, duration: float, ttft_n: int, upstream_pid: int | None,
            unary_only: bool = False) -> dict[str, Any]:
    res: dict[str, Any] = {}
    for stream in (False,) if unary_only else (False, True):
        kind = "stream" if stream else "unary"
        body = work / f"body-{stream}.json"
        body.write_bytes(t.body(stream))
        script = work / "req.lua"
        script.write_text(wrk_script(body, {"Content-Type": "application/json", **t.headers}))
        for c in CONCURRENCY:
            run_wrk(wrk, t.url + t.path, script, c, 1)          # warm the connections and caches
            r, cpu = measured_run(wrk, t.url + t.path, script, c, duration, t.pid,
                                  upstream_pid if t.pid is not None else None)
            res[(kind, c)], res[("cpu", kind, c)] = r, cpu.serving / 1000
            res[("split", kind, c)] = cpu
            print(f"  {t.name:<18} {kind:<6} c={c:<3} {r.rps:8.0f}/s  p50 {r.p50_ms or 0:6.2f} ms  p99 "
                  f"{r.p99_ms or 0:7.2f} ms  failed {r.failed}  {load_avg()}  CPU us/req: {cpu.text()}",
                  flush=True)
    if unary_only:
        return res
    res["ttft"] = _ttft(t, ttft_n)
    print(f"  {t.name:<18} TTFT p50 {res['ttft'] or float('nan'):.2f} ms", flush=True)
    return res


def _row(name: str, r: dict[str, Any] | None, up: dict[str, Any]) -> str:
    if r is None:
        return f"{name:<14} n/a"
    cells = []
    for kind in ("unary", "stream"):
        for c in CONCURRENCY:
            x = r[(kind, c)]
            cells.append(f"{x.rps:6.0f} ({x.p50_ms or 0:.1f}/{x.p99_ms or 0:.1f})")
    over = (r[("unary", 1)].p50_ms or 0) - (up[("unary", 1)].p50_ms or 0)
    ttft = f"{r['ttft']:.2f}" if r.get("ttft") is not None else "n/a"
    return (f"{name:<14} " + " ".join(cells) + f"  CPU {r[('cpu', 'unary', 32)] * 1000:.0f} us/req  "
            f"TTFT {ttft} ms  overhead p50 {over:+.2f} ms")


def _run_all(a: argparse.Namespace, wrk: str, work: Path, up: FakeUpstream) -> tuple[dict, dict, dict]:
    results: dict[str, dict[str, Any] | None] = {}
    limits: dict[str, dict[str, Any]] = {}
    rf: dict[str, Any] = {}
    up_pid = up.proc.pid
    upt = Target("upstream", up.url, "/v1/chat/completions", "fake-gpt", {}, up_pid)
    results["upstream"] = measure(upt, wrk, work, a.duration, a.ttft_samples, None)
    counts = sorted({1, a.workers})
    for n in counts if "plain" in a.parts else ():
        srv, t = _ladle(up.url, n, work)
        try:
            results[f"ladle x{n}"] = measure(t, wrk, work, a.duration, a.ttft_samples, up_pid)
        finally:
            srv.stop()
    if "limits" in a.parts:
        redis = redis_server(work) if a.workers > 1 else None
        runs: list[tuple[int, str | None, str]] = [(1, None, "shared")]
        if a.workers > 1:
            runs += [(a.workers, None, "shared"), (a.workers, None, "server")]
            if redis is not None:
                runs.append((a.workers, f"redis://127.0.0.1:{redis.port}/0", "shared"))  # type: ignore[attr-defined]
        try:
            for n, url, how in runs:
                srv, t = _ladle(up.url, n, work, limited=True, redis_url=url, limits=how)
                try:
                    limits[t.name] = measure(t, wrk, work, a.duration, 0, up_pid, unary_only=True)
                finally:
                    srv.stop()
        finally:
            if redis is not None:
                redis.stop()
    exe = None if a.no_litellm or "litellm" not in a.parts else litellm_exe(a.litellm)
    for n in counts if "litellm" in a.parts else ():
        if exe is None:
            results[f"litellm x{n}"] = None
            continue
        ll = LiteLLM(exe, up.url, n, work)
        try:
            ll.start()
            results[f"litellm x{n}"] = measure(ll.target(f"litellm x{n}"), wrk, work, a.duration,
                                               a.ttft_samples, up_pid)
        except Exception as e:   # noqa: BLE001  (reported, the rest of the bench goes on)
            print(f"  litellm x{n}: n/a ({e})")
            results[f"litellm x{n}"] = None
        finally:
            ll.stop()
    if "rf" in a.parts:
        rf = rf_vs_mlflow(work, wrk, a.duration, counts)
    return results, limits, rf


def _report(a: argparse.Namespace, results: dict, limits: dict, rf: dict) -> None:
    counts = sorted({1, a.workers})
    upr = results["upstream"]
    print("\nrequests/s (p50/p99 ms) at c=" + "/".join(map(str, CONCURRENCY)) + f", unary then streamed ({load_avg()})")
    for name, r in results.items():
        print(_row(name, r, upr))
    print("\nCPU microseconds per request, unary c=32, by process")
    for name, r in {**results, **limits}.items():
        if r:
            print(f"  {name:<18} {r[('split', 'unary', 32)].text()}")
    print("\nratios")
    for n in counts:
        lad, ll = results.get(f"ladle x{n}"), results.get(f"litellm x{n}")
        for kind in ("unary", "stream"):
            if lad and ll:
                print(f"  ladle/litellm x{n} {kind} c=32: {lad[(kind, 32)].rps / max(ll[(kind, 32)].rps, 1e-9):.1f}x")
        if lad and ll and lad[("cpu", "unary", 32)]:
            print(f"  CPU per request litellm/ladle x{n} unary c=32: "
                  f"{ll[('cpu', 'unary', 32)] / lad[('cpu', 'unary', 32)]:.1f}x")
    one, many = results.get("ladle x1"), results.get(f"ladle x{a.workers}")
    if one and many and a.workers > 1:
        print(f"  ladle x{a.workers} / x1 unary c=32: {many[('unary', 32)].rps / one[('unary', 32)].rps:.2f}x "
              f"(p99 {many[('unary', 32)].p99_ms:.1f} ms); CPU per request x{a.workers}/x1: "
              f"{many[('cpu', 'unary', 32)] / max(one[('cpu', 'unary', 32)], 1e-9):.2f}x")
    if limits:
        print("\nrate-limited endpoint (every request asks the limiter), unary:")
        for name, r in limits.items():
            print(f"  {name:<20} c=1 {r[('unary', 1)].rps:7.0f}/s  c=32 {r[('unary', 32)].rps:7.0f}/s "
                  f"p99 {r[('unary', 32)].p99_ms or 0:.1f} ms  CPU {r[('cpu', 'unary', 32)] * 1000:.0f} us/req")
    if rf:
        print("\nrandom forest, one row, c=32, against mlflow models serve:")
        for n in counts:
            lad, ml = rf.get(f"ladle x{n}"), rf.get(f"mlflow (beside x{n})")
            if lad and ml:
                print(f"  ladle x{n} {lad[0].rps:7.0f}/s (p99 {lad[0].p99_ms or 0:.1f} ms)  mlflow {ml[0].rps:6.0f}/s "
                      f"(p99 {ml[0].p99_ms or 0:.1f} ms)  ratio {lad[0].rps / max(ml[0].rps, 1e-9):.1f}x")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--duration", type=float, default=5.0, help="seconds per load run")
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="processes for the N-way runs")
    ap.add_argument("--litellm", default=None, help="a litellm executable (else /tmp/litellm-venv)")
    ap.add_argument("--no-litellm", action="store_true")
    ap.add_argument("--ttft-samples", type=int, default=100)
    ap.add_argument("--parts", default="plain,limits,litellm",
                    help="plain (ladle x1/xN), limits (a rate-limited endpoint), litellm, rf")
    a = ap.parse_args(argv)
    wrk = find_wrk()
    if wrk is None:
        print("wrk is needed (apt-get install wrk)")
        return 2
    work = Path(tempfile.mkdtemp(prefix="ladle-bench-gw-"))
    print(f"gateway bench: {os.cpu_count()} cores, N={a.workers}, {a.duration:g}s per run, {load_avg()}, "
          f"work in {work}")
    up = FakeUpstream(work / "upstream.log", tokens=8, interval_ms=1.0)
    up.start()
    try:
        results, limits, rf = _run_all(a, wrk, work, up)
    finally:
        up.stop()
    _report(a, results, limits, rf)
    return 0


if __name__ == "__main__":
    sys.exit(main())
