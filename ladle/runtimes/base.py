"""The ReplicaBackend seam: WHERE replicas run (local processes, Ray Serve, or a fake).

The reconciler asks a backend to `ensure` a replica group at a target size or `stop` it,
and reads `observe()`; the gateway asks `group(key)` for replicas to send requests to.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import AsyncIterator, Callable, Protocol

# The shared types live in ladle.schemas.replicas; imported here for the runtimes' callers.
from ladle.schemas.replicas import GroupObs, GroupSpec, GroupState, Log, Prepared, Preparer  # noqa: F401


class ReplicaGone(Exception):
    """The replica died or went away while a request was on it (retriable)."""


@dataclass
class Reply:
    status: int
    content_type: str
    chunks: AsyncIterator[bytes]
    # a traced request's model spans (JSON payloads of SPANS frames), filled as they come:
    # a stream's only once its chunks have been read
    spans: list[bytes] = field(default_factory=list)

    async def read(self) -> bytes:
        return b"".join([c async for c in self.chunks])


class Replica(Protocol):
    in_flight: int

    @property
    def alive(self) -> bool: ...

    async def call(self, meta: dict, body: bytes) -> Reply: ...



class ReplicaGroup(Protocol):
    spec: GroupSpec
    state: GroupState
    last_used: float

    def replicas(self) -> list[Replica]: ...

    def touch(self) -> None: ...

    def wake(self) -> None: ...

    async def wait_ready(self, timeout: float) -> bool: ...


class ReplicaBackend(Protocol):
    def set_notify(self, notify: Callable[[], None]) -> None: ...

    def ensure(self, spec: GroupSpec, target: int) -> None: ...

    async def stop(self, key: str) -> None: ...

    def observe(self) -> dict[str, GroupObs]: ...

    def group(self, key: str) -> ReplicaGroup | None: ...

    def resource_usage(self, key: str) -> tuple[float, float]: ...

    async def close(self) -> None: ...


class InFlight:
    """The requests in progress on a replica (or a group), and an event set while there are
    none: a drain awaits it instead of polling the count."""

    def __init__(self) -> None:
        self.count = 0
        self._idle = asyncio.Event()
        self._idle.set()

    def enter(self) -> None:
        self.count += 1
        self._idle.clear()

    def leave(self) -> None:
        self.count -= 1
        if self.count <= 0:
            self._idle.set()

    async def drained(self, timeout: float) -> bool:
        """Wait until no request is in progress (True) or `timeout` passes (False)."""
        if self._idle.is_set():
            return True
        try:
            await asyncio.wait_for(self._idle.wait(), timeout)
            return True
        except asyncio.TimeoutError:
            return False


async def drain_all(loads: list[InFlight], timeout: float) -> bool:
    """Wait until none of `loads` has a request in progress, or `timeout`."""
    return all(await asyncio.gather(*(x.drained(timeout) for x in loads)))


def last_error_line(tail: str) -> str:
    """The line of a replica's log tail that says what went wrong (else its last line)."""
    lines = [line for line in tail.splitlines() if line.strip()]
    for line in reversed(lines):
        if "Error" in line or "error" in line or "Exception" in line:
            return line.strip()[:500]
    return lines[-1].strip()[:500] if lines else ""


async def wait_for_replicas(group: "ReplicaGroup", ready: asyncio.Event, given_up: Callable[[], bool],
                            timeout: float) -> bool:
    """Wait until `group` has a replica (True), it failed or stops (`given_up`), or `timeout`.
    A waiting request is demand: the group is touched, so it is not scaled down meanwhile.
    `ready` is set by the group whenever its replicas may have changed."""
    if group.replicas():
        return True
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if given_up():
            return False
        group.touch()
        ready.clear()
        try:
            await asyncio.wait_for(ready.wait(), min(0.5, deadline - time.monotonic()))
        except asyncio.TimeoutError:
            pass
        if group.replicas():
            return True
    return False
