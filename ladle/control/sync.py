"""Several ladle servers on one database: each notices the others' writes.

Every write bumps one state version (control/store.py). When the database is shared
(PostgreSQL), each server reads that version every `interval_s` and, when it moved, reloads
what it caches (tokens, permissions, groups) and republishes its routes; the reconciler is
kicked so the lease holder acts on a config another server recorded. A change made on one
server is seen by all within about `interval_s`.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Callable, Sequence

from ladle.control.store import Store

log = logging.getLogger("ladle.sync")


class StateSync:
    def __init__(self, store: Store, interval_s: float, on_change: Sequence[Callable[[], None]]) -> None:
        self.store = store
        self.interval_s = interval_s
        self.on_change = list(on_change)

    async def run(self) -> None:
        seen = await asyncio.to_thread(self.store.version)
        while True:
            await asyncio.sleep(self.interval_s)
            try:
                now = await asyncio.to_thread(self.store.version)
                if now == seen:
                    continue
                seen = now
                for fn in self.on_change:
                    fn()
            except asyncio.CancelledError:
                raise
            except Exception:   # the database is away for a moment: try again next time
                log.exception("state sync failed")
