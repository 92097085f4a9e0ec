"""The data plane while the database host accepts connections and never answers.

    .venv/bin/python -m bench.db_outage [--duration S] [--concurrency N] [--stressors N]

Starts a real PostgreSQL (pgserver's binaries) behind a TCP proxy that can be switched
silent (ladle.testing.tcp_blackhole), a ladle server on that database with its default
database timeouts, registers the benchmark random forest and serves it as `bench-rf`. Then,
in one run, loads `bench-rf` (1-row bodies, wrk when installed, else aiohttp) for the same
duration in three phases: the database answering (normal), silent (outage: `--stressors`
threads also keep control-plane reads and unknown tokens waiting on it the whole time), and
answering again (after). Prints each phase's req/s, p50 and p99 and the outage/normal p99
ratio (goal: within 2x), the server process's CPU and threads in each phase, what the
stressors got, and how long after the outage a
control-plane write succeeded. Exits 0 whether the goal is met or not (a benchmark, not a test).
"""

from __future__ import annotations

import argparse
import secrets
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import httpx
import psutil
from rich.console import Console
from rich.table import Table

from bench.load import LoadResult, find_wrk, run_async_load, run_wrk, wrk_script
from bench.models import RF, body, make_data, register_all
from ladle.testing.postgres_server import postgres_server
from ladle.testing.process import LadleProcess
from ladle.testing.tcp_blackhole import TcpBlackhole

ENDPOINT = "bench-rf"


class Stressors:
    """Threads that keep control-plane reads (admin token) and unknown tokens waiting on the
    database, as clients retrying through an outage would; counts what they get back."""

    def __init__(self, srv: LadleProcess, n: int) -> None:
        self.srv, self.n = srv, n
        self.stop = threading.Event()
        self.got: Counter[str] = Counter()
        self._threads = [threading.Thread(target=self._run, args=(i,), daemon=True) for i in range(n)]

    def _run(self, i: int) -> None:
        token = None if i % 2 == 0 else "dapi-unknown-" + secrets.token_hex(16)
        with self.srv.client(token, timeout=60) as c:
            while not self.stop.is_set():
                try:
                    r = c.get("/api/2.0/serving-endpoints")
                    self.got[f"{'control plane' if token is None else 'unknown token'} {r.status_code}"] += 1
                except httpx.HTTPError as e:
                    self.got[type(e).__name__] += 1

    def __enter__(self) -> "Stressors":
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for t in self._threads:
            t.join(60)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m bench.db_outage", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--duration", type=float, default=15.0, help="seconds per phase")
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--stressors", type=int, default=8, help="threads waiting on the database during the outage")
    a = ap.parse_args(argv)
    console = Console()
    wrk = find_wrk()
    tmp = Path(tempfile.mkdtemp(prefix="ladle-bench-db-outage-"))
    token = "dapi-bench-" + secrets.token_hex(8)
    with postgres_server(tmp / "pg") as pg, TcpBlackhole(pg.socket_path) as proxy:
        srv = LadleProcess(tmp / "home", token, {
            "LADLE_FOUNDATION_ENDPOINTS": "false",
            "LADLE_DATABASE_URL": pg.via_tcp(pg.new_database(), proxy.port)})
        try:
            with console.status("starting ladle on PostgreSQL behind the proxy"):
                srv.start()
            data = make_data()
            with console.status("registering the benchmark models"):
                versions = register_all(srv.url, token, data, tmp)
            with srv.client(timeout=60) as c, console.status(f"serving {ENDPOINT}"):
                r = c.post("/api/2.0/serving-endpoints", json={"name": ENDPOINT, "config": {"served_entities": [
                    {"entity_name": RF, "entity_version": versions[RF], "workload_size": "Small",
                     "scale_to_zero_enabled": False}]}})
                r.raise_for_status()
                t0 = time.monotonic()
                while c.get(f"/api/2.0/serving-endpoints/{ENDPOINT}").json()["state"]["ready"] != "READY":
                    if time.monotonic() - t0 > 600:
                        raise RuntimeError(f"{ENDPOINT} not READY:\n{srv.output(3000)}")
                    time.sleep(0.5)
            url = f"{srv.url}/serving-endpoints/{ENDPOINT}/invocations"
            payload = body(data, 0, 1)
            headers = {"Content-Type": "application/json", "Authorization": f"Bearer {token}"}

            server_proc = psutil.Process(srv.proc.pid)
            cpu: dict[str, tuple[float, int]] = {}

            def phase(name: str, seconds: float) -> tuple[str, LoadResult]:
                """The load, and the server process's CPU (% of one core) and threads meanwhile."""
                t0, c0 = time.monotonic(), server_proc.cpu_times()
                r = load(seconds)
                c1, elapsed = server_proc.cpu_times(), time.monotonic() - t0
                busy = (c1.user - c0.user) + (c1.system - c0.system)
                cpu[name] = (100.0 * busy / elapsed, server_proc.num_threads())
                return name, r

            def load(seconds: float) -> LoadResult:
                if wrk:
                    (tmp / "body.json").write_bytes(payload)
                    script = tmp / "wrk.lua"
                    script.write_text(wrk_script(tmp / "body.json", headers))
                    return run_wrk(wrk, url, script, a.concurrency, seconds)
                return run_async_load(url, payload, headers, a.concurrency, seconds)

            load(2)                                                        # warm-up
            phases: list[tuple[str, LoadResult]] = []
            console.log("phase normal: the database answers")
            phases.append(phase("normal", a.duration))
            proxy.silence()
            console.log(f"phase outage: the database is silent; {a.stressors} threads wait on it")
            with Stressors(srv, a.stressors) as stress:
                phases.append(phase("outage", a.duration))
            proxy.answer()
            t_back = time.monotonic()
            with srv.client(timeout=60) as c:
                while c.patch(f"/api/2.0/serving-endpoints/{ENDPOINT}/tags",
                              json={"add_tags": [{"key": "k", "value": "v"}]}).status_code != 200:
                    time.sleep(0.2)
            recovered_s = time.monotonic() - t_back
            console.log(f"a control-plane write succeeded {recovered_s:.1f} s after the database answered again")
            console.log("phase after: the database answers again")
            phases.append(phase("after", a.duration))
        finally:
            proxy.answer()
            srv.stop()
    t = Table(title=f"{ENDPOINT} 1-row, c={a.concurrency}, {a.duration:g} s per phase "
                    f"({'wrk' if wrk else 'aiohttp'}); database silent in 'outage'")
    for col in ("phase", "req/s", "p50 ms", "p99 ms", "p99 / normal", "failed", "server CPU", "server threads"):
        t.add_column(col, justify="right")
    base = phases[0][1].p99_ms or 0.0
    for name, r in phases:
        ratio = f"{(r.p99_ms or 0) / base:.2f}x" if base else "n/a"
        t.add_row(name, f"{r.rps:.0f}", f"{r.p50_ms or 0:.2f}", f"{r.p99_ms or 0:.2f}", ratio, str(r.failed),
                  f"{cpu[name][0]:.0f}%", str(cpu[name][1]))
    console.print(t)
    outage_ratio = (phases[1][1].p99_ms or 0) / base if base else float("inf")
    console.print(f"outage p99 / normal p99 = {outage_ratio:.2f}x (goal <= 2x: "
                  f"{'met' if outage_ratio <= 2 else 'MISSED'}); stressors got: {dict(stress.got)}; "
                  f"control-plane write OK {recovered_s:.1f} s after the database answered again")
    console.print(f"(logs in {tmp})")


if __name__ == "__main__":
    main()
