"""What a gateway worker process uses in place of the server's own objects: the server keeps
the replicas, the counters and the tables; a worker reaches them over its link
(gateway/feed.py).

- `FollowerBackend`: the replica groups the server runs, as the socket paths of their ready
  replicas (pushed by the server); requests go straight to those sockets. Waking a group at
  zero asks the server; use (for scale-to-zero) is reported.
- `Relay`: metric observations, usage/payload rows and group use, batched every few
  milliseconds into one note; a drain sends what is queued at once.
- `RelayHub`: the `MetricsHub` a worker's gateway counts into (through the relay).
- `RelayWriter`: the `RowWriter` its recorder offers rows to (through the relay).
- `RemoteLimiter`: rate limits asked of the server's limiter, so they stay exact however
  many processes serve.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from pathlib import Path
from typing import Any, Sequence

from ladle.gateway.feed import Link
from ladle.gateway.pipeline import Gateway
from ladle.gateway.ratelimit import Bucket, Need
from ladle.runtimes.local_replica import AttachedReplica
from ladle.telemetry.tables import TableRef

BATCH_S = 0.005


class Relay:
    def __init__(self, link: Link, batch_s: float = BATCH_S) -> None:
        self.link = link
        self.batch_s = batch_s
        self.events: list[tuple] = []
        self.rows: list[tuple[TableRef, dict[str, Any], int]] = []
        self.touched: set[str] = set()
        self.load: dict[str, tuple[int, int]] = {}   # group -> (in flight, waiting), changed
        self._timer: asyncio.TimerHandle | None = None

    def event(self, *ev: Any) -> None:
        self.events.append(ev)
        self._soon()

    def row(self, table: TableRef, row: dict[str, Any], size: int) -> None:
        self.rows.append((table, row, size))
        self._soon()

    def touch(self, key: str) -> None:
        if key not in self.touched:
            self.touched.add(key)
            self._soon()

    def busy(self, key: str, in_flight: int, waiting: int) -> None:
        self.load[key] = (in_flight, waiting)
        self._soon()

    def _soon(self) -> None:
        if self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(self.batch_s, self.flush)

    def flush(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self.events or self.rows or self.touched or self.load:
            self.link.send("events", (self.events, self.rows, self.touched, self.load))
            self.events, self.rows, self.touched, self.load = [], [], set(), {}


class _Count:
    __slots__ = ("relay", "endpoint_id", "kind", "entity")

    def __init__(self, relay: Relay, endpoint_id: str, kind: str, entity: str = "") -> None:
        self.relay, self.endpoint_id, self.kind, self.entity = relay, endpoint_id, kind, entity

    def labels(self, entity: str) -> "_Count":
        return _Count(self.relay, self.endpoint_id, self.kind, entity)

    def inc(self) -> None:
        self.relay.event(self.endpoint_id, self.kind, self.entity, 0, 0.0)


class RelayMetrics:
    """An endpoint's metrics as the gateway uses them: counted by the server."""

    def __init__(self, relay: Relay, endpoint_id: str) -> None:
        self.relay, self.endpoint_id = relay, endpoint_id
        self.rate_limited = _Count(relay, endpoint_id, "rate_limited")
        self.guardrail_blocked = _Count(relay, endpoint_id, "guardrail_blocked")

    def observe(self, entity: str, status: int, elapsed_ms: float) -> None:
        self.relay.event(self.endpoint_id, "observe", entity, status, elapsed_ms)


class RelayHub:
    def __init__(self, relay: Relay) -> None:
        self.relay = relay
        self._by_endpoint: dict[str, RelayMetrics] = {}

    def for_endpoint(self, endpoint_id: str) -> RelayMetrics:
        m = self._by_endpoint.get(endpoint_id)
        if m is None:
            m = self._by_endpoint[endpoint_id] = RelayMetrics(self.relay, endpoint_id)
        return m

    def retain(self, endpoint_ids: set[str]) -> None:
        for gone in self._by_endpoint.keys() - endpoint_ids:
            del self._by_endpoint[gone]

    def items(self) -> list:
        return []


class RelayWriter:
    """Rows go to the server's table writer (which counts what it drops)."""

    def __init__(self, relay: Relay) -> None:
        self.relay = relay
        self.dropped: dict[str, int] = {}

    def offer(self, table: TableRef, row: dict[str, Any], size: int = 256) -> bool:
        self.relay.row(table, row, size)
        return True


class RemoteLimiter:
    def __init__(self, link: Link) -> None:
        self.link = link

    async def acquire(self, needs: Sequence[Need]) -> tuple[float, Need | None]:
        return await self.link.ask("limit.acquire", list(needs))

    async def charge(self, buckets: Sequence[Bucket], amount: int) -> None:
        self.link.send("limit.charge", (list(buckets), amount))

    async def aclose(self) -> None:
        pass


class FollowerGroup:
    def __init__(self, key: str, relay: Relay, link: Link) -> None:
        self.key, self.relay, self.link = key, relay, link
        self.last_used = time.monotonic()
        self.failed = False
        self._replicas: dict[str, AttachedReplica] = {}
        self.in_flight = 0   # requests of this worker on the group's replicas (the autoscaler counts them)
        self.waiting = 0
        self._changed = asyncio.Event()
        self._tasks: set[asyncio.Task] = set()

    # -- used by the gateway's pool ------------------------------------------------------
    def replicas(self) -> list[AttachedReplica]:
        return [r for r in self._replicas.values() if r.alive]

    def touch(self) -> None:
        self.relay.touch(self.key)

    def wake(self) -> None:
        if not self.replicas():
            self.link.send("wake", self.key)
        self.relay.touch(self.key)

    async def wait_ready(self, timeout: float) -> bool:
        self.waiting += 1
        self.relay.busy(self.key, self.in_flight, self.waiting)
        try:
            return await self._wait_ready(timeout)
        finally:
            self.waiting -= 1
            self.relay.busy(self.key, self.in_flight, self.waiting)

    def counted(self, delta: int) -> None:
        self.in_flight += delta
        self.relay.busy(self.key, self.in_flight, self.waiting)

    async def _wait_ready(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while not self.replicas():
            left = deadline - time.monotonic()
            if self.failed or left <= 0:
                return False
            self._changed.clear()
            try:
                await asyncio.wait_for(self._changed.wait(), left)
            except asyncio.TimeoutError:
                return False
        return True

    # -- pushed by the server ------------------------------------------------------------
    def update(self, paths: Sequence[str], failed: bool) -> None:
        self.failed = failed
        for gone in self._replicas.keys() - set(paths):
            r = self._replicas.pop(gone)
            if r._writer is not None:
                r._writer.close()
        for path in paths:
            if path not in self._replicas:
                r = self._replicas[path] = _Counted(Path(path), self)
                task = asyncio.get_running_loop().create_task(self._attach(path, r))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
        self._changed.set()

    async def _attach(self, path: str, r: AttachedReplica) -> None:
        try:
            await r.attach()
        except Exception:   # gone already: the server's next push drops it
            if self._replicas.get(path) is r:
                del self._replicas[path]
        self._changed.set()

    def close(self) -> None:
        self.update((), True)


class _Counted(AttachedReplica):
    """A replica of the server's whose requests from this worker are counted for its group."""

    def __init__(self, path: Path, group: FollowerGroup) -> None:
        super().__init__(path)
        self.group = group

    async def call(self, meta: dict, body: bytes) -> Any:
        self.group.counted(1)
        try:
            reply = await super().call(meta, body)
        except BaseException:
            self.group.counted(-1)
            raise
        return dataclasses.replace(reply, chunks=self._until_done(reply.chunks))

    async def _until_done(self, chunks: Any) -> Any:
        try:
            async for c in chunks:
                yield c
        finally:
            self.group.counted(-1)


class FollowerBackend:
    def __init__(self, relay: Relay, link: Link) -> None:
        self.relay, self.link = relay, link
        self._groups: dict[str, FollowerGroup] = {}

    def group(self, key: str) -> FollowerGroup | None:
        return self._groups.get(key)

    def update(self, groups: dict[str, tuple[tuple[str, ...], bool]]) -> None:
        for gone in self._groups.keys() - groups.keys():
            self._groups.pop(gone).close()
        for key, (paths, failed) in groups.items():
            g = self._groups.get(key)
            if g is None:
                g = self._groups[key] = FollowerGroup(key, self.relay, self.link)
            g.update(paths, failed)


class WorkerGateway(Gateway):
    """The gateway of a worker process: a name it does not serve, known or not, is looked up
    on every request (a question to its server over the link, which may have published it
    ready a moment ago), not at most every MISS_RETRY_S as on a shared database."""

    async def _look_again(self, name: str) -> None:
        if self.on_miss is not None and name not in self.routes:
            await self.on_miss(name)
