"""Provisioned throughput: the tokens/s one replica of an LLM generates on this machine.

An entity with `min/max_provisioned_throughput` (tokens/s) or `provisioned_model_units`
needs it: the autoscaler divides the throughput range by it (control/autoscale.py
`scale_range`). It is measured once, when the model's first replica is READY, by a short
calibration generation sent straight to that replica (a warm-up, then `PARALLEL` requests
of `MAX_TOKENS` at once: completion tokens over wall time), and stored in the endpoint's
record (`meta["throughput"]`, by model and version), so a restart or a config update that
keeps the model does not measure again. The endpoint's GET shows it on the served entity.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import orjson

from ladle.control.store import StaleRecord, Store
from ladle.runtimes.base import ReplicaBackend
from ladle.schemas.replicas import GroupState

log = logging.getLogger("ladle.throughput")

MAX_TOKENS = 32
PARALLEL = 4
TASK_BODY = {
    "llm/v1/chat": lambda: {"messages": [{"role": "user", "content": "Count from one to one hundred."}],
                            "max_tokens": MAX_TOKENS, "temperature": 0},
    "llm/v1/completions": lambda: {"prompt": "Count from one to one hundred:", "max_tokens": MAX_TOKENS,
                                   "temperature": 0},
}


def needs_throughput(ent: dict[str, Any]) -> bool:
    return bool(ent.get("max_provisioned_throughput") or ent.get("provisioned_model_units"))


def model_of(ent: dict[str, Any]) -> str:
    return f"{ent.get('entity_name')}/{ent.get('entity_version')}"


def measured(meta: dict[str, Any], ent: dict[str, Any]) -> float | None:
    return (meta.get("throughput") or {}).get(model_of(ent))


async def measure(replica: Any, task: str) -> float:
    """Tokens/s of one replica: a warm-up generation, then `PARALLEL` at once."""
    body = orjson.dumps(TASK_BODY[task]())
    meta = {"content_type": "application/json", "path": "invocations"}

    async def one() -> int:
        reply = await replica.call(meta, body)
        raw = await reply.read()
        if reply.status != 200:
            raise RuntimeError(f"calibration request answered {reply.status}: {raw[:200]!r}")
        return int(orjson.loads(raw).get("usage", {}).get("completion_tokens") or 0)

    await one()
    t0 = time.monotonic()
    tokens = sum(await asyncio.gather(*(one() for _ in range(PARALLEL))))
    elapsed = time.monotonic() - t0
    if tokens <= 0:
        raise RuntimeError("calibration generated no tokens")
    return tokens / max(elapsed, 1e-6)


class Calibrator:
    """Starts a measurement for each READY group whose model has none stored (one at a time
    per group), stores it and wakes the reconciler."""

    def __init__(self, store: Store, backend: ReplicaBackend, kick) -> None:
        self.store, self.backend, self.kick = store, backend, kick
        self._running: dict[str, asyncio.Task] = {}
        self._failed: set[str] = set()   # a model that could not be measured is not retried

    def check(self, where: dict[str, tuple[Any, dict[str, Any]]], observed: dict) -> None:
        for key, (rec, ent) in where.items():
            task = (rec.meta or {}).get("task")
            if (not needs_throughput(ent) or task not in TASK_BODY or measured(rec.meta, ent)
                    or key in self._running or (rec.id, model_of(ent)) in self._failed):
                continue
            obs, group = observed.get(key), self.backend.group(key)
            if obs is None or obs.state != GroupState.READY or group is None or not group.replicas():
                continue
            t = asyncio.get_running_loop().create_task(self._run(key, rec.id, ent, task, group.replicas()[0]))
            self._running[key] = t

    async def _run(self, key: str, endpoint_id: str, ent: dict[str, Any], task: str, replica: Any) -> None:
        try:
            tps = await measure(replica, task)
            await self.store.call(self._save, endpoint_id, model_of(ent), round(tps, 1))
            log.info("%s: %.1f tokens/s per replica", model_of(ent), tps)
            self.kick()
        except asyncio.CancelledError:
            raise
        except Exception:
            log.warning("could not measure the throughput of %s", model_of(ent), exc_info=True)
            self._failed.add((endpoint_id, model_of(ent)))
        finally:
            self._running.pop(key, None)

    def _save(self, endpoint_id: str, model: str, tps: float) -> None:
        for _ in range(5):   # a handler may save the record meanwhile: read it again
            rec = self.store.get_endpoint_by_id(endpoint_id)
            if rec is None:
                return
            rec.meta.setdefault("throughput", {})[model] = tps
            try:
                self.store.save_endpoint(rec)
                return
            except StaleRecord:
                continue

    async def close(self) -> None:
        for t in list(self._running.values()):
            t.cancel()
        await asyncio.gather(*self._running.values(), return_exceptions=True)
