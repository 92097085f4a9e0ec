"""Request metrics across servers: every `interval_s` each server writes its counter and
histogram samples, per endpoint, into one Redis hash (`ladle:metrics`, a field per server)
and reads the other servers' fields back into `MetricsHub.remote`. `export-metrics`, the
metrics history and the web UI's charts of any server then count every server's requests
(at most about two intervals late for the others' latest ones).

A server's field is keyed by its table journal's id (telemetry/spool.py), which a restarted
server takes over: at its first share it reads its predecessor's field back and keeps adding
to it, so a restart neither loses the requests counted before it nor makes a counter go
back. The fields of servers that are gone stay: what they served was served.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import orjson

from ladle.telemetry.metrics import MetricsHub, Sample

log = logging.getLogger("ladle.telemetry")
KEY = "ladle:metrics"


class MetricsShare:
    def __init__(self, redis: Any, server_id: str, hub: MetricsHub, interval_s: float = 1.0) -> None:
        self.redis, self.server_id, self.hub, self.interval_s = redis, server_id, hub, interval_s
        self.base: dict[str, list[Sample]] | None = None   # a predecessor's counts (same id)
        self.shares = 0                                     # successful rounds (for tests)

    @classmethod
    def from_url(cls, url: str, server_id: str, hub: MetricsHub, interval_s: float = 1.0) -> "MetricsShare":
        import redis.asyncio

        return cls(redis.asyncio.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5),
                   server_id, hub, interval_s)

    async def share(self) -> None:
        """One round: publish this server's counts, read everyone else's."""
        if self.base is None:
            raw = await self.redis.hget(KEY, self.server_id)
            self.base = _decode(raw)["e"] if raw else {}
        mine = _add(self.base, self.hub.local_samples())
        await self.redis.hset(KEY, self.server_id, orjson.dumps({"e": mine}))
        fields = await self.redis.hgetall(KEY)
        remote: dict[str, list[list[Sample]]] = {}
        for server, raw in fields.items():
            server = server.decode() if isinstance(server, bytes) else server
            if server == self.server_id:
                continue
            for endpoint_id, samples in _decode(raw)["e"].items():
                remote.setdefault(endpoint_id, []).append(samples)
        for endpoint_id, samples in self.base.items():   # the predecessor's counts are remote too
            remote.setdefault(endpoint_id, []).append(samples)
        self.hub.remote = remote
        self.shares += 1

    async def run(self) -> None:
        while True:
            try:
                await self.share()
            except asyncio.CancelledError:
                raise
            except Exception:   # Redis is away: the numbers shown are this server's until it is back
                log.warning("sharing metrics through Redis failed", exc_info=True)
            await asyncio.sleep(self.interval_s)

    async def aclose(self) -> None:
        await self.redis.aclose()


def _decode(raw: bytes) -> dict[str, Any]:
    doc = orjson.loads(raw)
    doc["e"] = {eid: [(n, labels, v) for n, labels, v in samples] for eid, samples in doc.get("e", {}).items()}
    return doc


def _add(base: dict[str, list[Sample]], live: dict[str, list[Sample]]) -> dict[str, list[Sample]]:
    """Sample-wise sums of two servers' worth of samples (a predecessor's and this one's)."""
    out: dict[str, list[Sample]] = {}
    for endpoint_id in base.keys() | live.keys():
        total: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
        for name, labels, value in [*base.get(endpoint_id, ()), *live.get(endpoint_id, ())]:
            k = (name, tuple(sorted(labels.items())))
            total[k] = total.get(k, 0.0) + value
        out[endpoint_id] = [(name, dict(labels), v) for (name, labels), v in total.items()]
    return out
