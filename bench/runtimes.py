"""Where replicas run: the local runtime (worker processes of the server) against Ray Serve
(LADLE_RUNTIME=ray), the same random-forest model and load, side by side.

    .venv/bin/python -m bench.runtimes [--duration S] [--concurrency 1,8,32]

Starts a Ray head (loopback, token auth), a ladle server on each runtime (the Ray one uses
the local one's MLflow registry), registers the benchmark models, serves the random forest on
both and loads them in turns with the same generator (wrk when installed, else aiohttp).
Prints one table; exits 0 whether ladle-on-Ray is faster or not (a benchmark, not a test).
"""

from __future__ import annotations

import argparse
import secrets
import tempfile
import time
from pathlib import Path

import httpx
from rich.console import Console
from rich.table import Table

from bench.load import find_wrk, run_async_load, run_wrk, wrk_script
from bench.models import RF, body, make_data, register_all
from ladle.testing.process import LadleProcess
from ladle.testing.ray_cluster import ray_head

ENDPOINT = "bench-rf"


def _serve(srv: LadleProcess, version: str, console: Console) -> None:
    with srv.client(timeout=60) as c:
        r = c.post("/api/2.0/serving-endpoints", json={"name": ENDPOINT, "config": {"served_entities": [
            {"entity_name": RF, "entity_version": version, "workload_size": "Small", "scale_to_zero_enabled": False}]}})
        r.raise_for_status()
        t0 = time.monotonic()
        with console.status(f"waiting for {ENDPOINT} on {srv.url} to be READY"):
            while c.get(f"/api/2.0/serving-endpoints/{ENDPOINT}").json()["state"]["ready"] != "READY":
                if time.monotonic() - t0 > 600:
                    raise RuntimeError(f"{ENDPOINT} not READY on {srv.url}:\n{srv.output(3000)}")
                time.sleep(0.5)
        console.log(f"{srv.url}: READY in {time.monotonic() - t0:.1f} s")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m bench.runtimes", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--duration", type=float, default=10.0, help="seconds per load cell")
    ap.add_argument("--concurrency", default="1,8,32")
    a = ap.parse_args(argv)
    conc = [int(x) for x in a.concurrency.split(",")]
    console = Console()
    wrk = find_wrk()
    tmp = Path(tempfile.mkdtemp(prefix="ladle-bench-runtimes-"))
    token = "dapi-bench-" + secrets.token_hex(8)
    with ray_head(tmp / "ray") as ray_env:
        local = LadleProcess(tmp / "local", token, {"LADLE_FOUNDATION_ENDPOINTS": "false"})
        with console.status("starting the local-runtime server (and its MLflow registry)"):
            local.start()
        ray = LadleProcess(tmp / "ray-home", token, {
            "LADLE_RUNTIME": "ray", **ray_env, "LADLE_FOUNDATION_ENDPOINTS": "false",
            "LADLE_MLFLOW_TRACKING_URI": local.url, "LADLE_MLFLOW_TRACKING_TOKEN": token})
        try:
            with console.status("starting the Ray-runtime server"):
                ray.start()
            data = make_data()
            with console.status("registering the benchmark models"):
                versions = register_all(local.url, token, data, tmp)
            for srv in (local, ray):
                _serve(srv, versions[RF], console)
            payload = body(data, 0, 1)
            headers = {"Content-Type": "application/json", "Authorization": f"Bearer {token}"}
            rows = []
            for c in conc:
                for name, srv in (("local", local), ("ray", ray)):
                    url = f"{srv.url}/serving-endpoints/{ENDPOINT}/invocations"
                    if wrk:
                        (tmp / "body.json").write_bytes(payload)
                        script = tmp / "wrk.lua"
                        script.write_text(wrk_script(tmp / "body.json", headers))
                        run_wrk(wrk, url, script, c, 2)             # warm-up
                        r = run_wrk(wrk, url, script, c, a.duration)
                    else:
                        run_async_load(url, payload, headers, c, 2)
                        r = run_async_load(url, payload, headers, c, a.duration)
                    console.log(f"c={c:<2} {name:<5} {r.rps:8.0f} req/s p50 {r.p50_ms or 0:7.2f} ms "
                                f"p99 {r.p99_ms or 0:7.2f} ms failed {r.failed}")
                    rows.append((c, name, r))
        finally:
            ray.stop()
            local.stop()
    t = Table(title=f"RF 1-row, local runtime vs Ray Serve ({'wrk' if wrk else 'aiohttp'}, {a.duration:g} s per cell)")
    for col in ("concurrency", "runtime", "req/s", "p50 ms", "p99 ms", "failed"):
        t.add_column(col, justify="right")
    for c, name, r in rows:
        t.add_row(str(c), name, f"{r.rps:.0f}", f"{r.p50_ms or 0:.2f}", f"{r.p99_ms or 0:.2f}", str(r.failed))
    console.print(t)
    console.print(f"(logs in {tmp})")


if __name__ == "__main__":
    main()
