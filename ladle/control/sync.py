"""Several ladle servers on one database: each notices the others' writes.

Every write bumps one state version (control/store.py). When the database is shared
(PostgreSQL), each server reads that version every `interval_s` and, when it moved, reloads
what it caches (tokens, permissions, groups) and republishes its routes; the reconciler is
kicked so the lease holder acts on a config another server recorded.

On PostgreSQL each write also NOTIFYs `ladle_state` (control/store.py); every server
LISTENs on its own connection and looks at once when told, so a change made on one server
is seen by the others within milliseconds. The poll every `interval_s` stays as the
fallback: a lost listening connection (reconnected with a back-off) costs at most one
interval.

A version counts as seen only once every reload callback succeeded for it: a callback that
fails (the database went away halfway) is run again each interval until it succeeds, and if
the version moves meanwhile, every callback runs again. Plain callbacks do blocking store
reads, so they run on the store's threads (`Store.call`); coroutine functions are awaited on
the event loop (they must do their own blocking work off it).
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from typing import Any, Awaitable, Callable, Sequence, Union

from ladle.control.store import STATE_CHANNEL, Store

log = logging.getLogger("ladle.sync")
Callback = Union[Callable[[], None], Callable[[], Awaitable[None]]]


class StateSync:
    def __init__(self, store: Store, interval_s: float, on_change: Sequence[Callback]) -> None:
        self.store = store
        self.interval_s = interval_s
        self.on_change = list(on_change)
        self.seen: int | None = None       # the version every callback has reloaded for
        self._target: int | None = None    # the version being reloaded for
        self._todo: list[Callback] = []    # the callbacks still to succeed for _target
        self._wake = asyncio.Event()
        self.notified = 0                  # wake-ups given by the listener (or anyone)

    def wake(self) -> None:
        """Look now rather than at the next interval (another server wrote)."""
        self.notified += 1
        self._wake.set()

    async def run(self, min_gap_s: float = 0.05) -> None:
        """Step every `interval_s`, or when woken; at most one step per `min_gap_s`, so a
        burst of writes elsewhere costs one reload, not one per write."""
        while True:
            self._wake.clear()
            await self.step()
            await asyncio.sleep(min_gap_s)
            try:
                await asyncio.wait_for(self._wake.wait(), self.interval_s)
            except asyncio.TimeoutError:
                pass

    async def listen(self, url: str, retry_s: float = 1.0) -> None:
        """LISTEN for state-version bumps on a connection of its own and wake the sync loop
        on each; reconnect after `retry_s` (doubling up to 30 s) when the connection fails."""
        import psycopg

        delay = retry_s
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(
                        url, autocommit=True, connect_timeout=max(1, int(self.store.timeouts.connect_s)),
                        keepalives=1, keepalives_idle=10, keepalives_interval=5, keepalives_count=3) as conn:
                    await conn.execute(f"LISTEN {STATE_CHANNEL}")
                    self.wake()        # changes made while not listening: look once
                    delay = retry_s
                    async for _ in conn.notifies():
                        self.wake()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.warning("state sync: listening for changes failed; polling meanwhile", exc_info=True)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 30.0)

    async def step(self) -> None:
        """One look at the version, and the reloads it calls for (or still owes)."""
        try:
            now = await self.store.call(self.store.version)
        except asyncio.CancelledError:
            raise
        except Exception:   # the database is away for a moment: try again next time
            log.warning("state sync: cannot read the state version", exc_info=True)
            return
        if now != self._target:
            # The first look (the caches were loaded at start, maybe before someone's write)
            # or a new write: everything reloads.
            self._target, self._todo = now, list(self.on_change)
        failed = []
        for fn in self._todo:
            try:
                await self._call(fn)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.warning("state sync: reload %s failed; retrying", _name(fn), exc_info=True)
                failed.append(fn)
        self._todo = failed
        if not failed:
            self.seen = now

    async def _call(self, fn: Callback) -> Any:
        if inspect.iscoroutinefunction(fn):
            return await fn()
        return await self.store.call(fn)


def _name(fn: Callback) -> str:
    return getattr(fn, "__qualname__", None) or repr(fn)
