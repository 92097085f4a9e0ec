"""The table writer of a server: rows go to the server's journal (telemetry/spool.py) on the
request path, and a background task drains the journal into the tables in batches.

Several servers append to the same Delta tables (`LADLE_TABLES_DIR` on a shared filesystem)
at once: Delta's optimistic concurrency retries a commit that lost the race (appends never
conflict with each other). Each commit carries a Delta transaction `(ladle-spool-<journal
id>, offset)`: the journal offset its rows reach. A writer that starts (or whose commit
failed in an unknown state) reads that version back from the table and skips every row at or
below it, so a row is written once even when a server is killed between its commit and its
bookkeeping, and none is lost: the journal keeps each row until every table has it.

Bounds: `max_rows` rows or `max_bytes` bytes waiting in the journal; a row beyond them is
dropped and counted (never awaited). A table that keeps refusing rows for `give_up_s` has
that batch's rows counted as dropped, so one broken table cannot stall the others for ever.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import date, datetime
from typing import Any

import orjson

from ladle.telemetry.spool import Spool
from ladle.telemetry.tables import TableRef, TableSink

log = logging.getLogger("ladle.telemetry")


class SpooledWriter:
    def __init__(self, sink: TableSink, spool: Spool, flush_rows: int = 500, flush_interval_s: float = 2.0,
                 max_rows: int = 20_000, max_bytes: int = 64 * 1024 * 1024,
                 batch_bytes: int = 8 * 1024 * 1024, give_up_s: float = 600.0) -> None:
        self.sink, self.spool = sink, spool
        self.flush_rows, self.flush_interval_s = flush_rows, flush_interval_s
        self.max_rows, self.max_bytes = max_rows, max_bytes
        self.batch_bytes, self.give_up_s = batch_bytes, give_up_s
        self.app_id = f"ladle-spool-{spool.id}"
        self.done = (spool.bases() or [spool.end])[0]   # every row before this is in its table
        self.pending = 0                                # rows offered since the last drain
        self.dropped: dict[str, int] = {}
        self.written: dict[str, int] = {}
        self.write_errors = 0
        self._committed: dict[str, int] = {}            # table -> journal offset it holds
        self._failing_since: float | None = None
        self._wake: asyncio.Event | None = None
        self._task: asyncio.Task | None = None
        self._lock = asyncio.Lock()
        self._stopping = False

    # -- request path -------------------------------------------------------------------
    def offer(self, table: TableRef, row: dict[str, Any], size: int = 256) -> bool:
        """Journal one row; False (counted as dropped) when the journal is full or the disk
        refuses it."""
        if self.pending >= self.max_rows or self.spool.end - self.done >= self.max_bytes:
            self.dropped[table.name] = self.dropped.get(table.name, 0) + 1
            return False
        try:
            self.spool.append(orjson.dumps([table.name, table.columns, row]) + b"\n")
        except (OSError, TypeError):
            log.exception("journaling a row of %s failed", table.name)
            self.dropped[table.name] = self.dropped.get(table.name, 0) + 1
            return False
        self.pending += 1
        if self.pending >= self.flush_rows and self._wake is not None:
            self._wake.set()
        return True

    # -- lifecycle ----------------------------------------------------------------------
    def start(self) -> None:
        if self._task is None:
            self._stopping = False
            self._wake = asyncio.Event()
            self._task = asyncio.get_running_loop().create_task(self._loop())

    async def stop(self) -> None:
        """Stop the background task and write everything journaled."""
        if self._task is not None:
            self._stopping = True
            assert self._wake is not None
            self._wake.set()
            await self._task
            self._task = None
        try:
            await self.flush()
        except Exception:   # what is left stays journaled for the next start
            log.exception("table flush at shutdown failed")
        self.spool.close()

    async def _loop(self) -> None:
        assert self._wake is not None
        try:
            await self.adopt_orphans()
        except Exception:
            log.exception("draining the journals of ended processes failed")
        while not self._stopping:
            try:
                await asyncio.wait_for(self._wake.wait(), self.flush_interval_s)
            except asyncio.TimeoutError:
                pass
            self._wake.clear()
            try:
                await self.flush()
            except Exception:
                log.exception("table flush failed; the rows stay journaled")

    async def flush(self) -> None:
        """Write everything journaled now (also called by readers that want fresh data); a
        table that refuses its rows keeps them journaled for the next flush."""
        async with self._lock:
            while self.done < self.spool.end:
                try:
                    await asyncio.to_thread(self._drain_batch, self.spool.end)
                except OSError:
                    log.warning("table flush incomplete; the rows stay journaled", exc_info=True)
                    return

    async def adopt_orphans(self) -> int:
        """Write the rows left in the journals beside this one that no live process holds
        (each is claimed, drained and released); returns how many rows that wrote."""
        wrote = 0
        for root in await asyncio.to_thread(self.spool.orphans):
            other = await asyncio.to_thread(Spool.try_claim, root)
            if other is None:
                continue    # a live process's
            writer = SpooledWriter(self.sink, other, give_up_s=self.give_up_s)
            await writer.stop()   # flushes, then closes and releases the journal
            n = sum(writer.written.values())
            if n:
                log.info("wrote %d rows a process had left in %s", n, root)
            wrote += n
        return wrote

    # -- the writer (a worker thread, one batch at a time) ------------------------------
    def _drain_batch(self, end: int) -> None:
        lines = [(e, raw) for e, raw in self.spool.read(self.done, self.batch_bytes) if e <= end]
        if not lines:
            return
        upto = lines[-1][0]
        batches: dict[str, tuple[TableRef, list[dict[str, Any]]]] = {}
        for e, raw in lines:
            try:
                name, columns, row = orjson.loads(raw)
            except orjson.JSONDecodeError:   # cannot happen short of a damaged disk: skip it
                log.error("skipping an unreadable journal line at offset %d", e)
                continue
            if e <= self._holds(name, columns):
                continue    # committed before a restart or an unanswered commit
            table = TableRef(name, tuple((c, t) for c, t in columns))
            batches.setdefault(name, (table, []))[1].append(_decode(table, row))
        failed = []
        for table, rows in batches.values():
            try:
                self.sink.append(table, rows, (self.app_id, upto))
            except Exception:
                self.write_errors += 1
                self._committed.pop(table.name, None)   # the commit may have landed: ask again
                log.exception("writing %d rows to %s failed", len(rows), table.name)
                failed.append((table, rows))
                continue
            self._committed[table.name] = upto
            self.written[table.name] = self.written.get(table.name, 0) + len(rows)
        if failed:
            now = time.monotonic()
            self._failing_since = self._failing_since or now
            if now - self._failing_since < self.give_up_s:
                raise OSError(f"{len(failed)} table(s) refused their rows; retrying")
            for table, rows in failed:
                self.dropped[table.name] = self.dropped.get(table.name, 0) + len(rows)
                self._committed[table.name] = upto   # not again in this process
                log.error("gave up on %d rows of %s after %.0f s of failures", len(rows), table.name,
                          now - self._failing_since)
        self._failing_since = None
        self.done = upto
        self.pending = max(0, self.pending - len(lines))
        self.spool.release(self.done)

    def _holds(self, name: str, columns: list) -> int:
        v = self._committed.get(name)
        if v is None:
            table = TableRef(name, tuple((c, t) for c, t in columns))
            v = self._committed[name] = self.sink.committed(table, self.app_id)
        return v


def _decode(table: TableRef, row: dict[str, Any]) -> dict[str, Any]:
    """A journaled row back in the types the table's columns take (JSON has no dates)."""
    for c, t in table.columns:
        v = row.get(c)
        if v is None:
            continue
        if t == "timestamp":
            row[c] = datetime.fromisoformat(v)
        elif t == "date":
            row[c] = date.fromisoformat(v)
        elif t == "map<string,string>":
            row[c] = [tuple(p) for p in v]
    return row
