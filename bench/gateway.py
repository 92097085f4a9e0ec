"""The external-model gateway on every core, and against LiteLLM's proxy.

`python -m bench.gateway [--duration 5] [--workers N] [--litellm PATH]`

One fake OpenAI upstream (bench/fake_openai.py) behind: the upstream alone; ladle's
external-model endpoint with one serving process (LADLE_GATEWAY_WORKERS=1) and with N (one
per core by default); LiteLLM's proxy (master key set) with 1 worker and with N. For each,
chat unary and streamed: requests/s at c=1/8/32 with p50/p99 (wrk), time to the first SSE
event (p50 over sequential requests, minimal client), and the overhead over the upstream
alone (p50 at c=1 less the upstream's). Ratios are printed at the end.

LiteLLM is not a dependency of ladle. The bench uses `--litellm` (a `litellm` executable), or
/tmp/litellm-venv/bin/litellm, or builds that venv when `uv` is on hand:
    uv venv /tmp/litellm-venv && uv pip install --python /tmp/litellm-venv/bin/python 'litellm[proxy]'
Without it the LiteLLM rows say n/a.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from statistics import median
from typing import Any

import psutil

from bench.clients import RawHttp
from bench.load import LoadResult, find_wrk, percentile, run_wrk, wrk_script
from bench.procs import REPO_ROOT, FakeUpstream
from ladle.testing.process import ChildProcess, LadleProcess, child_env, free_port

LITELLM_VENV = Path("/tmp/litellm-venv")
CONCURRENCY = (1, 8, 32)
MSGS = [{"role": "user", "content": "Say something."}]


class Target:
    """Something that answers chat completions: a URL path, its body and headers."""

    def __init__(self, name: str, url: str, path: str, model: str | None, headers: dict[str, str],
                 pid: int | None = None) -> None:
        self.name, self.url, self.path, self.model, self.headers = name, url, path, model, headers
        self.pid = pid      # the serving process tree's root (its CPU time is counted)

    def cpu_s(self) -> float:
        """CPU seconds the serving process tree has used so far."""
        if self.pid is None:
            return 0.0
        root = psutil.Process(self.pid)
        total = 0.0
        for p in [root, *root.children(recursive=True)]:
            try:
                t = p.cpu_times()
                total += t.user + t.system
            except psutil.Error:
                pass
        return total

    def body(self, stream: bool) -> bytes:
        b: dict[str, Any] = {"messages": MSGS, "max_tokens": 8}
        if self.model:
            b["model"] = self.model
        if stream:
            b["stream"] = True
        return json.dumps(b).encode()


def _litellm(given: str | None) -> str | None:
    if given:
        return given
    exe = LITELLM_VENV / "bin" / "litellm"
    if exe.exists():
        return str(exe)
    uv = shutil.which("uv") or str(Path(sys.executable).parent / "uv")
    if not Path(uv).exists():
        return None
    print(f"building {LITELLM_VENV} (litellm[proxy]) ...", flush=True)
    ok = subprocess.run([uv, "venv", str(LITELLM_VENV), "--python", "3.11", "-q"]).returncode == 0 and \
        subprocess.run([uv, "pip", "install", "--python", str(LITELLM_VENV / "bin" / "python"), "-q",
                        "litellm[proxy]"]).returncode == 0
    return str(exe) if ok and exe.exists() else None


class LiteLLM:
    def __init__(self, exe: str, upstream: str, workers: int, work: Path) -> None:
        self.port = free_port()
        self.key = "sk-master-" + secrets.token_hex(8)
        cfg = work / f"litellm-{workers}.yaml"
        cfg.write_text(json.dumps({   # YAML is a superset of JSON
            "model_list": [{"model_name": "fake", "litellm_params": {
                "model": "openai/fake-gpt", "api_base": upstream + "/v1", "api_key": "sk-bench"}}],
            "general_settings": {"master_key": self.key},
            "litellm_settings": {"drop_params": True, "set_verbose": False}}))
        env = child_env({"LITELLM_LOG": "ERROR", "LITELLM_LOCAL_MODEL_COST_MAP": "True"})
        self.proc = ChildProcess([exe, "--config", str(cfg), "--host", "127.0.0.1", "--port", str(self.port),
                                  "--num_workers", str(workers)], work / f"litellm-{workers}.log", env, work)

    def start(self) -> float:
        self.proc.start()
        return self.proc.wait_http(f"http://127.0.0.1:{self.port}/health/liveliness", 400, interval=0.2)

    def target(self, name: str) -> Target:
        return Target(name, f"http://127.0.0.1:{self.port}", "/v1/chat/completions", "fake",
                      {"Authorization": f"Bearer {self.key}"}, self.proc.pid)

    def stop(self) -> None:
        self.proc.stop()


def _redis(work: Path) -> ChildProcess | None:
    """A redis-server on a free port (the one next to this interpreter, or on PATH)."""
    exe = Path(sys.executable).parent / "redis-server"
    found = str(exe) if exe.exists() else shutil.which("redis-server")
    if not found:
        return None
    port = free_port()
    proc = ChildProcess([found, "--port", str(port), "--save", "", "--appendonly", "no"],
                        work / "redis.log", child_env(), work)
    proc.start()
    proc.port = port  # type: ignore[attr-defined]
    deadline = time.monotonic() + 30
    import socket
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return proc
        except OSError:
            if time.monotonic() > deadline:
                proc.stop()
                return None
            time.sleep(0.05)


def _ladle(upstream: str, workers: int, work: Path, limited: bool = False,
           redis_url: str | None = None) -> tuple[LadleProcess, Target]:
    token = "dapi-bench-" + secrets.token_hex(8)
    env = {"LADLE_GATEWAY_WORKERS": str(workers)}
    if redis_url:
        env["LADLE_REDIS_URL"] = redis_url
    tag = f"{workers}{'-limits' if limited else ''}{'-redis' if redis_url else ''}"
    srv = LadleProcess(work / f"ladle-{tag}", token, env, cwd=REPO_ROOT)
    srv.start()
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
    name = f"ladle x{workers}" + (" lim" + ("/redis" if redis_url else "/srv") if limited else "")
    return srv, Target(name, srv.url, "/serving-endpoints/chat/invocations", None, srv.headers,
                       srv.proc.pid if srv.proc else None)


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


def measure(t: Target, wrk: str, work: Path, duration: float, ttft_n: int,
            unary_only: bool = False) -> dict[str, Any]:
    res: dict[str, Any] = {}
    for stream in (False,) if unary_only else (False, True):
        body = work / f"body-{stream}.json"
        body.write_bytes(t.body(stream))
        script = work / "req.lua"
        script.write_text(wrk_script(body, {"Content-Type": "application/json", **t.headers}))
        for c in CONCURRENCY:
            run_wrk(wrk, t.url + t.path, script, c, 1)          # warm the connections and caches
            cpu0 = t.cpu_s()
            r: LoadResult = run_wrk(wrk, t.url + t.path, script, c, duration)
            cpu_ms = (t.cpu_s() - cpu0) * 1000 / max(r.requests, 1)
            res[("stream" if stream else "unary", c)] = r
            res[("cpu", "stream" if stream else "unary", c)] = cpu_ms
            print(f"  {t.name:<14} {'stream' if stream else 'unary':<6} c={c:<3} {r.rps:9.0f}/s  p50 "
                  f"{r.p50_ms or 0:7.2f} ms  p99 {r.p99_ms or 0:7.2f} ms  failed {r.failed}  "
                  f"CPU {cpu_ms:.3f} ms/request", flush=True)
    if unary_only:
        return res
    res["ttft"] = _ttft(t, ttft_n)
    print(f"  {t.name:<14} TTFT p50 {res['ttft'] or float('nan'):.2f} ms", flush=True)
    return res


def _row(name: str, r: dict[str, Any] | None, up: dict[str, Any]) -> str:
    if r is None:
        return f"{name:<16} n/a"
    cells = []
    for kind in ("unary", "stream"):
        for c in CONCURRENCY:
            x = r[(kind, c)]
            cells.append(f"{x.rps:7.0f} ({x.p50_ms or 0:.1f}/{x.p99_ms or 0:.1f})")
    over = (r[("unary", 1)].p50_ms or 0) - (up[("unary", 1)].p50_ms or 0)
    cells.append(f"CPU {r[('cpu', 'unary', 32)]:.3f} ms/req")
    ttft = f"{r['ttft']:.2f}" if r.get("ttft") is not None else "n/a"
    return f"{name:<16} " + " ".join(cells) + f"  TTFT {ttft} ms  overhead p50 {over:+.2f} ms"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--duration", type=float, default=5.0, help="seconds per load run")
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="processes for the N-way runs")
    ap.add_argument("--litellm", default=None, help="a litellm executable (else /tmp/litellm-venv)")
    ap.add_argument("--no-litellm", action="store_true")
    ap.add_argument("--ttft-samples", type=int, default=100)
    ap.add_argument("--parts", default="plain,limits,litellm",
                    help="plain (ladle x1/xN), limits (a rate-limited endpoint), litellm")
    a = ap.parse_args(argv)
    wrk = find_wrk()
    if wrk is None:
        print("wrk is needed (apt-get install wrk)")
        return 2
    work = Path(tempfile.mkdtemp(prefix="ladle-bench-gw-"))
    print(f"gateway bench: {os.cpu_count()} cores, N={a.workers}, {a.duration:g}s per run, work in {work}")
    up = FakeUpstream(work / "upstream.log", tokens=8, interval_ms=1.0)
    up.start()
    results: dict[str, dict[str, Any] | None] = {}
    limits: dict[str, dict[str, Any] | None] = {}
    try:
        upt = Target("upstream", up.url, "/v1/chat/completions", "fake-gpt", {})
        results["upstream"] = measure(upt, wrk, work, a.duration, a.ttft_samples)
        for n in sorted({1, a.workers}) if "plain" in a.parts else ():
            srv, t = _ladle(up.url, n, work)
            try:
                results[f"ladle x{n}"] = measure(t, wrk, work, a.duration, a.ttft_samples)
            finally:
                srv.stop()
        redis = _redis(work) if a.workers > 1 and "limits" in a.parts else None
        runs: list[tuple[int, str | None]] = [(1, None)]
        if a.workers > 1:
            runs.append((a.workers, None))
            if redis is not None:
                runs.append((a.workers, f"redis://127.0.0.1:{redis.port}/0"))  # type: ignore[attr-defined]
        for n, url in runs if "limits" in a.parts else ():
            srv, t = _ladle(up.url, n, work, limited=True, redis_url=url)
            try:
                limits[t.name] = measure(t, wrk, work, a.duration, 0, unary_only=True)
            finally:
                srv.stop()
        if redis is not None:
            redis.stop()
        exe = None if a.no_litellm else _litellm(a.litellm)
        for n in sorted({1, a.workers}) if "litellm" in a.parts else ():
            if exe is None:
                results[f"litellm x{n}"] = None
                continue
            ll = LiteLLM(exe, up.url, n, work)
            try:
                ll.start()
                results[f"litellm x{n}"] = measure(ll.target(f"litellm x{n}"), wrk, work, a.duration,
                                                   a.ttft_samples)
            except Exception as e:   # noqa: BLE001  (reported, the rest of the bench goes on)
                print(f"  litellm x{n}: n/a ({e})")
                results[f"litellm x{n}"] = None
            finally:
                ll.stop()
    finally:
        up.stop()
    upr = results["upstream"]
    assert upr is not None
    print("\nrequests/s (p50/p99 ms) at c=" + "/".join(map(str, CONCURRENCY)) + ", unary then streamed")
    for name, r in results.items():
        print(_row(name, r, upr))
    print("\nratios")
    for n in sorted({1, a.workers}):
        lad, ll = results.get(f"ladle x{n}"), results.get(f"litellm x{n}")
        for kind in ("unary", "stream"):
            if lad and ll:
                print(f"  ladle/litellm x{n} {kind} c=32: {lad[(kind, 32)].rps / max(ll[(kind, 32)].rps, 1e-9):.1f}x")
    for n in sorted({1, a.workers}):
        lad, ll = results.get(f"ladle x{n}"), results.get(f"litellm x{n}")
        if lad and ll and lad[("cpu", "unary", 32)]:
            print(f"  CPU per request litellm/ladle x{n} unary c=32: "
                  f"{ll[('cpu', 'unary', 32)] / lad[('cpu', 'unary', 32)]:.1f}x")
    print("\nrate-limited endpoint (every request asks the limiter), unary:")
    for name, r in limits.items():
        if r:
            print(f"  {name:<20} c=1 {r[('unary', 1)].rps:7.0f}/s  c=32 {r[('unary', 32)].rps:7.0f}/s "
                  f"p99 {r[('unary', 32)].p99_ms or 0:.1f} ms  CPU {r[('cpu', 'unary', 32)]:.3f} ms/req")
    one, many = results.get("ladle x1"), results.get(f"ladle x{a.workers}")
    if one and many and a.workers > 1:
        print(f"  ladle x{a.workers} / x1 unary c=32: {many[('unary', 32)].rps / one[('unary', 32)].rps:.2f}x "
              f"(p99 {many[('unary', 32)].p99_ms:.1f} ms); CPU per request x{a.workers}/x1: "
              f"{many[('cpu', 'unary', 32)] / max(one[('cpu', 'unary', 32)], 1e-9):.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
