"""Parts measured on ladle alone or against a direct path: gateway overhead (ladle vs the
replica's socket), streamed-chat time to first token (ladle vs the upstream), cold start
from zero, and resident memory."""

from __future__ import annotations

import json
import time
from statistics import median

import httpx
import psutil

from bench.clients import RawHttp, ReplicaClient, socket_path_from_logs
from bench.context import API, Ctx, served_entities
from bench.load import percentile
from bench.models import NOOP_BODY, body
from bench.procs import FakeUpstream, mem_mib

NOOP_ENDPOINT = "bench-noop"
COLD_ENDPOINT = "bench-cold"
CHAT_ENDPOINT = "bench-chat"
NA_EXTERNAL = "n/a (external models not available)"


def _cmd(p: psutil.Process) -> list[str]:
    try:
        return p.cmdline()
    except psutil.Error:
        return []


def _replica_socket(ctx: Ctx, name: str) -> str:
    ep = ctx.get(name)
    served = served_entities(ep)[0]["name"]
    path = socket_path_from_logs(ctx.server_logs(name, served))
    if path:
        return path
    for p in ctx.ladle.replica_procs():   # fallback: the worker's --socket argument
        cmd = _cmd(p)
        if ep["id"][:12] in " ".join(cmd) and "--socket" in cmd:
            return cmd[cmd.index("--socket") + 1]
    raise RuntimeError(f"no replica socket found for {name}")


def overhead(ctx: Ctx) -> None:
    """No-op model at concurrency 1: p50 through ladle's HTTP gateway vs the replica's framed
    protocol directly. Both clients are minimal blocking sockets, interleaved request by request."""
    n = ctx.args.samples
    path = _replica_socket(ctx, NOOP_ENDPOINT)
    url_path = f"/serving-endpoints/{NOOP_ENDPOINT}/invocations"
    meta = {"content_type": "application/json", "path": "invocations"}
    http, direct = RawHttp(ctx.ladle.url), ReplicaClient(path)
    via, dir_ = [], []
    try:
        for i in range(n + 50):
            t0 = time.perf_counter()
            s1, b1 = http.post(url_path, NOOP_BODY, ctx.auth)
            t1 = time.perf_counter()
            s2, b2 = direct.call(meta, NOOP_BODY)
            t2 = time.perf_counter()
            if s1 != 200 or s2 != 200:
                raise RuntimeError(f"no-op model answered ladle {s1} {b1[:200]!r}, direct {s2} {b2[:200]!r}")
            if i >= 50:   # warm-up
                via.append((t1 - t0) * 1000)
                dir_.append((t2 - t1) * 1000)
    finally:
        http.close()
        direct.close()
    ctx.res.overhead = {"ladle_p50": median(via), "direct_p50": median(dir_), "ladle_p99": percentile(via, 99),
                        "direct_p99": percentile(dir_, 99), "n": n, "socket": path}
    o = ctx.res.overhead
    ctx.log(f"gateway overhead: ladle p50 {o['ladle_p50']:.3f} ms, direct p50 {o['direct_p50']:.3f} ms "
            f"-> +{o['ladle_p50'] - o['direct_p50']:.3f} ms ({n} requests each)")


def _chat_endpoint(ctx: Ctx, upstream_url: str) -> str | None:
    """Create the external-model endpoint; returns a reason string when it can't be served."""
    ext = {"provider": "openai", "name": "fake-gpt", "task": "llm/v1/chat",
           "openai_config": {"openai_api_base": upstream_url + "/v1", "openai_api_key_plaintext": "sk-bench"}}
    r = ctx.http.post(API, json={"name": CHAT_ENDPOINT, "config": {"served_entities": [
        {"name": "fake-chat", "external_model": ext}]}})
    if r.status_code != 200:
        if r.status_code == 501 or "NOT_IMPLEMENTED" in r.text:
            return NA_EXTERNAL
        return f"n/a (create answered {r.status_code}: {r.text[:200]})"
    try:
        ctx.wait_ready(CHAT_ENDPOINT, 60.0)
    except RuntimeError as e:
        return f"n/a (external endpoint not READY: {str(e)[:200]})"
    return None


def chat(ctx: Ctx) -> None:
    """Streamed chat through ladle (external model -> fake OpenAI upstream) vs the upstream
    directly: time to the first SSE event, same minimal client, interleaved."""
    up = FakeUpstream(ctx.tmp / "fake-upstream.log")
    up.start()
    try:
        reason = _chat_endpoint(ctx, up.url)
        msgs = [{"role": "user", "content": "Say something."}]
        via_body = json.dumps({"messages": msgs, "max_tokens": 8, "stream": True}).encode()
        up_body = json.dumps({"model": "fake-gpt", "messages": msgs, "max_tokens": 8, "stream": True}).encode()
        via_path = f"/serving-endpoints/{CHAT_ENDPOINT}/invocations"
        lad, direct = RawHttp(ctx.ladle.url), RawHttp(up.url)
        try:
            if reason is None:
                st, _, out = lad.first_event(via_path, via_body, ctx.auth)
                if st == 501 or b"NOT_IMPLEMENTED" in out:
                    reason = NA_EXTERNAL
                elif st != 200 or b"data:" not in out:
                    reason = f"n/a (ladle answered {st}: {out[:200]!r})"
            if reason is not None:
                ctx.res.chat_na = reason
                ctx.log(f"streamed chat: {reason}")
                return
            via, dir_ = [], []
            for i in range(ctx.args.chat_samples + 10):
                s1, t1, _ = lad.first_event(via_path, via_body, ctx.auth)
                s2, t2, _ = direct.first_event("/v1/chat/completions", up_body, {})
                if s1 != 200 or s2 != 200:
                    raise RuntimeError(f"streamed chat answered ladle {s1}, upstream {s2}")
                if i >= 10:
                    via.append(t1 * 1000)
                    dir_.append(t2 * 1000)
        finally:
            lad.close()
            direct.close()
        ctx.res.chat = {"ladle_p50": median(via), "upstream_p50": median(dir_), "ladle_p99": percentile(via, 99),
                        "upstream_p99": percentile(dir_, 99), "n": len(via)}
        c = ctx.res.chat
        ctx.log(f"streamed chat TTFT: ladle p50 {c['ladle_p50']:.2f} ms, upstream p50 {c['upstream_p50']:.2f} ms")
    finally:
        ctx.http.delete(f"{API}/{CHAT_ENDPOINT}")
        up.stop()


def _wait_scaled_to_zero(ctx: Ctx, served: str, timeout: float, settle: float) -> float:
    """Until replica_count is 0 and no worker of the endpoint is alive, continuously for
    `settle` seconds (the scale-down has finished, as after a real idle period)."""
    t0 = time.perf_counter()
    zero_since = None
    while True:
        count = ctx.replica_count(COLD_ENDPOINT, served)
        procs = ctx.replica_pids(COLD_ENDPOINT)
        now = time.perf_counter()
        if count == 0 and not procs:
            zero_since = zero_since or now
            if now - zero_since >= settle:
                return now - t0
        else:
            zero_since = None
        if now - t0 > timeout:
            raise RuntimeError(f"{COLD_ENDPOINT} did not scale to zero in {timeout:.0f}s "
                               f"(replica_count {count}, worker processes {sorted(procs)})")
        time.sleep(0.25)


def cold_start(ctx: Ctx) -> None:
    """`bench-cold` (random forest, scale_to_zero_enabled) idles until its replica is gone
    (replica_count gauge 0 and no worker process, for --cold-settle seconds), then the first
    request is timed on a new connection, to its answer."""
    a = ctx.args
    served = served_entities(ctx.get(COLD_ENDPOINT))[0]["name"]
    b = body(ctx.data, 0, 1)
    for rep in range(a.cold_reps):
        waited = _wait_scaled_to_zero(ctx, served, a.idle_s + 120, a.cold_settle)
        with httpx.Client(timeout=a.cold_timeout) as c:
            t0 = time.perf_counter()
            try:
                r = c.post(ctx.invocations_url(COLD_ENDPOINT), content=b,
                           headers={"Content-Type": "application/json", **ctx.auth})
                status, text = r.status_code, r.text
            except httpx.TimeoutException:
                status, text = 0, f"no answer within {a.cold_timeout:g} s"
            dt = time.perf_counter() - t0
        ctx.res.cold_starts.append((dt, status))
        ctx.log(f"cold start {rep + 1}/{a.cold_reps}: {dt:.2f} s to first answer (status {status or 'timeout'}; "
                f"at zero after {waited:.1f} s of waiting)")
        if status != 200:
            ctx.res.notes.append(f"cold start {rep + 1}: {status or 'timeout'} after {dt:.1f} s: {text[:300]}")
            ctx.log(f"[yellow]  answer: {text[:300]}")


def memory(ctx: Ctx, endpoint_names: list[str]) -> None:
    """RSS (and USS) of the ladle server, each replica, ladle's embedded MLflow registry,
    and the `mlflow models serve` process tree."""
    owners = {}
    for name in endpoint_names:
        try:
            owners.update({pid: name for pid in ctx.replica_pids(name)})
        except httpx.HTTPError:
            pass
    tree = ctx.ladle.proc.tree()
    if not tree:
        return
    root, rows = tree[0], ctx.res.memory
    rows.append(("ladle server (gateway + control plane)", root.pid, *mem_mib(root)))
    replicas = ctx.ladle.replica_procs()
    for p in sorted(replicas, key=lambda p: (p.pid not in owners, owners.get(p.pid, ""))):
        if p.pid in owners:
            what = f"ladle replica of {owners[p.pid]}"
        else:
            what = "ladle warm spare worker (not serving)" if "--standby" in _cmd(p) else "ladle worker (?)"
        rows.append((what, p.pid, *mem_mib(p)))
    replicas = {p.pid for p in replicas}
    others = [p for p in tree[1:] if p.pid not in replicas]
    if others:
        rss = sum(mem_mib(p)[0] for p in others)
        usses = [mem_mib(p)[1] for p in others]
        uss = None if any(u is None for u in usses) else sum(usses)
        rows.append((f"ladle embedded MLflow registry ({len(others)} processes)", others[0].pid, rss, uss))
    if ctx.mlflow is not None:
        mtree = ctx.mlflow.proc.tree()
        for p in mtree:
            what = "mlflow serve: uvicorn" if "uvicorn" in " ".join(_cmd(p)) else "mlflow serve: CLI/launcher"
            rows.append((what, p.pid, *mem_mib(p)))
        if mtree:
            vals = [mem_mib(p) for p in mtree]
            uss = None if any(u is None for _, u in vals) else sum(u for _, u in vals)
            rows.append(("mlflow serve: whole tree", mtree[0].pid, sum(r for r, _ in vals), uss))
    for what, pid, rss, uss in rows:
        ctx.log(f"memory {what} (pid {pid}): RSS {rss:.0f} MiB" + (f", USS {uss:.0f} MiB" if uss else ""))
