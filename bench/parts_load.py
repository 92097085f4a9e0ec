"""Parts that compare ladle and `mlflow models serve` under load, or under a config change:
throughput, identical outputs, failed requests during update-config."""

from __future__ import annotations

import asyncio
import json
import time

import httpx

from bench.context import API, Ctx, entity, served_entities
from bench.load import AsyncLoad
from bench.models import LR, body
from bench.report import Cell

RF_ENDPOINT = "bench-rf"
UPDATE_ENDPOINT = "bench-update"


def throughput(ctx: Ctx) -> None:
    """Both servers, the same load generator and bodies; ladle and mlflow interleaved per cell."""
    a = ctx.args
    ladle_url, mlflow_url = ctx.invocations_url(RF_ENDPOINT), ctx.mlflow.url + "/invocations"
    sides = (("ladle", ladle_url, ctx.auth), ("mlflow", mlflow_url, {}))
    for rows in a.rows:
        b = body(ctx.data, 0, rows)
        for server, url, hdrs in sides:
            warm = ctx.load(url, b, hdrs, 8, a.warmup)
            if warm.failed:
                ctx.log(f"[yellow]warm-up {server} {rows}-row: {warm.failed} failed of {warm.requests}")
        for conc in a.concurrency:
            for server, url, hdrs in sides:
                r = ctx.load(url, b, hdrs, conc, a.duration)
                ctx.res.throughput.append(Cell("rf", rows, conc, server, r))
                ctx.log(f"throughput rf {rows:>3}-row c={conc:<2} {server:<6} {r.rps:8.0f} req/s  "
                        f"p50 {r.p50_ms or 0:7.2f} ms  p99 {r.p99_ms or 0:7.2f} ms  failed {r.failed}")


def _compare(ladle_out: list[tuple[int, bytes]], mlflow_out: list[tuple[int, bytes]]) -> tuple[bool, str]:
    bad = []
    for i, ((ls, lb), (ms, mb)) in enumerate(zip(ladle_out, mlflow_out)):
        if ls != 200 or ms != 200:
            bad.append(f"input {i}: status ladle {ls} mlflow {ms}: {lb[:200]!r}")
            continue
        if json.loads(lb) != json.loads(mb):
            bad.append(f"input {i}: ladle {lb[:120]!r} != mlflow {mb[:120]!r}")
    return (not bad, "; ".join(bad[:3]) if bad else f"{len(ladle_out)} inputs")


def _answer(r: httpx.Response) -> tuple[int, bytes]:
    return r.status_code, r.content


async def _concurrent(url: str, bodies: list[bytes], headers: dict[str, str]) -> list[tuple[int, bytes]]:
    async with httpx.AsyncClient(timeout=120.0, headers=headers,
                                 limits=httpx.Limits(max_connections=len(bodies))) as c:
        rs = await asyncio.gather(*(c.post(url, content=b, headers={"Content-Type": "application/json"})
                                    for b in bodies))
    return [_answer(r) for r in rs]


def identical(ctx: Ctx) -> None:
    """The same 20 inputs (1-row and 100-row) to both servers: the JSON must be equal.
    Ladle gets them one by one and also all at once (batched, where ladle batches)."""
    ladle_url, mlflow_url = ctx.invocations_url(RF_ENDPOINT), ctx.mlflow.url + "/invocations"
    json_ct = {"Content-Type": "application/json"}
    sets = (("1-row", [body(ctx.data, i, 1) for i in range(20)]),
            ("100-row", [body(ctx.data, 100 * i, 100) for i in range(20)]))
    with httpx.Client(timeout=120.0) as c:
        for label, bodies in sets:
            m = [_answer(c.post(mlflow_url, content=b, headers=json_ct)) for b in bodies]
            lad = [_answer(c.post(ladle_url, content=b, headers={**json_ct, **ctx.auth})) for b in bodies]
            ok, detail = _compare(lad, m)
            ctx.res.identical.append((f"{label} sequential", ok, detail))
            lad_c = asyncio.run(_concurrent(ladle_url, bodies, ctx.auth))
            ok_c, detail_c = _compare(lad_c, m)
            ctx.res.identical.append((f"{label} concurrent", ok_c, detail_c))
            ctx.log(f"identical {label}: sequential {'OK' if ok else 'DIFF'}, "
                    f"concurrent {'OK' if ok_c else 'DIFF'}")


async def _update_under_load(ctx: Ctx, concurrency: int) -> dict:
    url = ctx.invocations_url(UPDATE_ENDPOINT)
    load = AsyncLoad(url, body(ctx.data, 0, 1), {"Content-Type": "application/json", **ctx.auth}, concurrency)
    task = asyncio.ensure_future(load.run())
    await asyncio.sleep(1.5)
    new_cfg = {"served_entities": [entity(LR, ctx.versions[LR])]}
    async with httpx.AsyncClient(base_url=ctx.ladle.url, headers=ctx.auth, timeout=30.0) as c:
        t0 = time.perf_counter()
        r = await c.put(f"{API}/{UPDATE_ENDPOINT}/config", json=new_cfg)
        if r.status_code != 200:
            load.stop.set()
            await task
            raise RuntimeError(f"PUT config answered {r.status_code}: {r.text}")
        deadline = t0 + 300
        while True:
            ep = (await c.get(f"{API}/{UPDATE_ENDPOINT}")).json()
            ents = served_entities(ep)
            if (ep["state"]["config_update"] == "NOT_UPDATING" and ents
                    and ents[0].get("entity_name") == LR):
                break
            if ep["state"]["config_update"] == "UPDATE_FAILED" or time.perf_counter() > deadline:
                load.stop.set()
                await task
                raise RuntimeError(f"update did not finish: {ep['state']}")
            await asyncio.sleep(0.1)
        update_s = time.perf_counter() - t0
    await asyncio.sleep(2.0)   # keep the load on the new config a little
    load.stop.set()
    result = await task
    return {"result": result, "served": dict(load.served), "update_s": update_s, "concurrency": concurrency}


def update_config(ctx: Ctx) -> None:
    """Load at concurrency 8 (aiohttp: it stops when the update is over) while PUT /config
    switches `bench-update` from the random forest to the logistic regression."""
    out = asyncio.run(_update_under_load(ctx, 8))
    ctx.res.update = out
    r = out["result"]
    ctx.log(f"update-config under load: {r.requests} answered, {r.non2xx} non-2xx, {r.errors} errors, "
            f"update took {out['update_s']:.1f} s, served {out['served']}")
    for s in r.samples:
        ctx.log(f"[yellow]  failure sample: {s}")

