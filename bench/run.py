"""ladle versus `mlflow models serve`: one command.

    .venv/bin/python -m bench.run [--quick] [--only PART,...] [--duration S]

Starts a temporary ladle server and `mlflow models serve`, registers the benchmark models,
measures every part (throughput, overhead, start-up, cold start, updates, memory, chat)
and prints the tables. Exits 0 whether or not targets are
met (a benchmark is not a test); non-zero only when the harness itself cannot run.
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

PARTS = ("startup", "identical", "throughput", "overhead", "chat", "memory", "cold-start", "update-config")
NEEDS_MLFLOW = {"startup", "identical", "throughput", "memory"}


def _ints(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x.strip()]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="short smoke run (2 s per cell, fewer samples)")
    ap.add_argument("--only", default=",".join(PARTS), help=f"comma-separated parts: {', '.join(PARTS)}")
    ap.add_argument("--duration", type=float, default=None, help="seconds per load cell (default 10, quick 2)")
    ap.add_argument("--warmup", type=float, default=None, help="warm-up seconds per server and body")
    ap.add_argument("--concurrency", type=_ints, default=[1, 8, 32])
    ap.add_argument("--rows", type=_ints, default=[1, 100])
    ap.add_argument("--loadgen", choices=("auto", "wrk", "python"), default="auto",
                    help="auto: wrk, installed with apt-get when root; python: aiohttp")
    ap.add_argument("--samples", type=int, default=None, help="gateway-overhead requests per side")
    ap.add_argument("--chat-samples", type=int, default=None, help="streamed-chat requests per side")
    ap.add_argument("--cold-reps", type=int, default=None, help="cold starts to time")
    ap.add_argument("--cold-settle", type=float, default=None,
                    help="seconds the endpoint must stay at zero before a cold request (default 5, quick 3)")
    ap.add_argument("--cold-timeout", type=float, default=120.0, help="client timeout of a cold request")
    ap.add_argument("--idle-s", type=float, default=2.0, help="LADLE_SCALE_TO_ZERO_IDLE_S for the server")
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory (logs, LADLE_HOME)")
    a = ap.parse_args(argv)
    a.parts = [p.strip() for p in a.only.split(",") if p.strip()]
    unknown = set(a.parts) - set(PARTS)
    if unknown:
        ap.error(f"unknown parts: {', '.join(sorted(unknown))} (choose from {', '.join(PARTS)})")
    q = a.quick
    a.duration = a.duration if a.duration is not None else (2.0 if q else 10.0)
    a.warmup = a.warmup if a.warmup is not None else (1.0 if q else 2.0)
    a.samples = a.samples if a.samples is not None else (200 if q else 2000)
    a.chat_samples = a.chat_samples if a.chat_samples is not None else (20 if q else 200)
    a.cold_reps = a.cold_reps if a.cold_reps is not None else (1 if q else 3)
    a.cold_settle = a.cold_settle if a.cold_settle is not None else (3.0 if q else 5.0)
    return a


def _git_head() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                              cwd=Path(__file__).resolve().parents[1], timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "?"


def _part(ctx, name: str, fn, *args) -> None:
    if name not in ctx.args.parts:
        return
    t0 = time.perf_counter()
    with ctx.console.status(f"[bold]{name}[/bold] ..."):
        try:
            fn(ctx, *args)
        except Exception as e:  # one broken part must not hide the others
            ctx.res.notes.append(f"part {name} failed: {type(e).__name__}: {e}")
            ctx.console.log(f"[red]part {name} failed: {type(e).__name__}: {e}")
            return
    ctx.console.log(f"[green]{name} done in {time.perf_counter() - t0:.0f} s")


def _setup(ctx) -> None:
    from bench import models
    from bench.context import entity
    from bench.parts_load import RF_ENDPOINT, UPDATE_ENDPOINT
    from bench.parts_misc import COLD_ENDPOINT, NOOP_ENDPOINT
    from bench.procs import MlflowServe

    a, c, res = ctx.args, ctx.console, ctx.res
    with c.status("registering the benchmark models through ladle's MLflow registry ..."):
        ctx.versions = models.register_all(ctx.ladle.url, ctx.ladle.admin_token, ctx.data, ctx.tmp)
    c.log(f"registered {ctx.versions}")
    if NEEDS_MLFLOW & set(a.parts):
        model_dir = models.download(models.RF, ctx.versions[models.RF], ctx.tmp / "mlflow-model")
        ctx.mlflow = MlflowServe(model_dir, ctx.tmp / "mlflow-serve.log")
        with c.status("starting mlflow models serve ..."):
            res.mlflow_startup_s = ctx.mlflow.start()
        c.log(f"mlflow models serve up on {ctx.mlflow.url} in {res.mlflow_startup_s:.2f} s (to /ping 200)")
        with c.status(f"creating {RF_ENDPOINT} (timed: create -> READY) ..."):
            res.ladle_ready_s = ctx.create(RF_ENDPOINT, [entity(models.RF, ctx.versions[models.RF])])
        c.log(f"{RF_ENDPOINT} READY {res.ladle_ready_s:.2f} s after create")
    rf, noop = ctx.versions[models.RF], ctx.versions[models.NOOP]
    more = {"overhead": (NOOP_ENDPOINT, [entity(models.NOOP, noop)]),
            "cold-start": (COLD_ENDPOINT, [entity(models.RF, rf, scale_to_zero_enabled=True)]),
            "update-config": (UPDATE_ENDPOINT, [entity(models.RF, rf)])}
    for part, (name, ents) in more.items():
        if part in a.parts:
            with c.status(f"creating {name} ..."):
                c.log(f"{name} READY {ctx.create(name, ents):.2f} s after create")


def _run_parts(ctx) -> None:
    from bench import parts_load as pl
    from bench import parts_misc as pm

    _part(ctx, "identical", pl.identical)
    _part(ctx, "throughput", pl.throughput)
    _part(ctx, "overhead", pm.overhead)
    _part(ctx, "chat", pm.chat)
    _part(ctx, "memory", pm.memory, [pl.RF_ENDPOINT, pm.NOOP_ENDPOINT, pm.COLD_ENDPOINT, pl.UPDATE_ENDPOINT])
    _part(ctx, "cold-start", pm.cold_start)
    _part(ctx, "update-config", pl.update_config)


def main(argv: list[str] | None = None) -> int:
    from rich.console import Console

    from bench.context import Ctx
    from bench.load import find_wrk
    from bench.logscan import scan_home
    from bench.models import make_data
    from bench.procs import bench_server
    from bench.report import Results, render, summary_tables

    a = parse_args(argv)
    console = Console()
    res = Results()
    tmp = Path(tempfile.mkdtemp(prefix="ladle-bench-"))
    ladle = bench_server(tmp / "home", "dapi-bench-" + secrets.token_hex(12), a.idle_s)
    wrk = find_wrk() if a.loadgen in ("auto", "wrk") else None
    if a.loadgen == "wrk" and not wrk:
        console.print("[red]wrk was asked for but is not available")
        return 2
    res.loadgen = "wrk" if wrk else "python-aiohttp (wrk not available)"
    console.rule("ladle bench")
    console.log(f"ladle {_git_head()}, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}, "
                f"loadgen {res.loadgen}, {a.duration:g} s per cell, parts: {', '.join(a.parts)}")
    ctx = None
    rc = 0
    try:
        with console.status("starting ladle server (embedded MLflow registry takes a while) ..."):
            res.ladle_server_start_s = ladle.start()
        console.log(f"ladle server on {ladle.url} ready in {res.ladle_server_start_s:.1f} s (home {ladle.home})")
        with httpx.Client(base_url=ladle.url, headers={"Authorization": f"Bearer {ladle.admin_token}"},
                          timeout=60.0) as http:
            ctx = Ctx(console=console, args=a, tmp=tmp, ladle=ladle, http=http, data=make_data(), res=res, wrk=wrk)
            _setup(ctx)
            _run_parts(ctx)
    except KeyboardInterrupt:
        console.log("[red]interrupted")
        rc = 130
    except Exception as e:
        console.log(f"[red]benchmark setup failed: {type(e).__name__}: {e}")
        console.log("ladle server output (tail):\n" + (ladle.proc.output(3000) if ladle.proc else ""))
        rc = 1
    finally:
        with console.status("stopping servers ..."):
            if ctx is not None and ctx.mlflow is not None:
                ctx.mlflow.stop()
            ladle.stop()
    res.log_findings = scan_home(ladle.home)
    console.rule("results")
    console.log(f"load average at the end {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")
    for title, header, rows in summary_tables(res):
        render(console, title, header, rows)
    for n in res.notes:
        console.print(f"[yellow]note: {n}")
    if a.keep:
        console.print(f"kept {tmp}")
    else:
        shutil.rmtree(tmp, ignore_errors=True)
    return rc


if __name__ == "__main__":
    sys.exit(main())
