"""Which server runs the reconciler, for the servers that do not: the lease holder writes its
URL into Redis (`ladle:leader`, expiring after three intervals) every `interval_s`. The
replicas' runtime and build logs are written where the reconciler runs, so another server
asks that one for them (api/logs_forward.py)."""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Callable

import orjson

log = logging.getLogger("ladle.telemetry")
KEY = "ladle:leader"


class Peers:
    def __init__(self, redis: Any, server_id: str, url: str, leading: Callable[[], bool],
                 interval_s: float = 1.0) -> None:
        self.redis, self.server_id, self.url, self.leading = redis, server_id, url, leading
        self.interval_s = interval_s
        self.ttl_ms = max(3000, int(interval_s * 3000))

    async def announce(self) -> None:
        if self.leading():
            await self.redis.set(KEY, orjson.dumps({"id": self.server_id, "url": self.url}), px=self.ttl_ms)

    async def leader_url(self) -> str | None:
        """The URL of the server running the reconciler; None when it is this one or unknown."""
        raw = await self.redis.get(KEY)
        if not raw:
            return None
        doc = orjson.loads(raw)
        return None if doc.get("id") == self.server_id else str(doc["url"])

    async def run(self) -> None:
        while True:
            try:
                await self.announce()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.warning("announcing this server in Redis failed", exc_info=True)
            await asyncio.sleep(self.interval_s)
