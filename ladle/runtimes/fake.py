"""An in-memory ReplicaBackend for tests: groups become ready when told (or at once), and
replicas answer with a function instead of a process."""

from __future__ import annotations

import asyncio
import json
import time
from typing import AsyncIterator, Callable

from ladle.runtimes.base import GroupObs, GroupSpec, Reply, ReplicaGone
from ladle.schemas.replicas import GroupState

Handler = Callable[[GroupSpec, dict, bytes], tuple[int, str, bytes]]


def echo_handler(spec: GroupSpec, meta: dict, body: bytes) -> tuple[int, str, bytes]:
    return 200, "application/json", json.dumps({"predictions": [spec.entity_name]}).encode()


class FakeReplica:
    def __init__(self, group: "FakeGroup") -> None:
        self.group = group
        self.in_flight = 0
        self.dead = False

    @property
    def alive(self) -> bool:
        return not self.dead

    async def call(self, meta: dict, body: bytes) -> Reply:
        if self.dead:
            raise ReplicaGone("fake replica is dead")
        self.in_flight += 1
        try:
            await asyncio.sleep(self.group.backend.latency_s)
            if self.dead:
                raise ReplicaGone("fake replica died")
            status, ctype, out = self.group.backend.handler(self.group.spec, meta, body)
        finally:
            self.in_flight -= 1

        async def chunks() -> AsyncIterator[bytes]:
            yield out

        return Reply(status, ctype, chunks())


class FakeGroup:
    def __init__(self, spec: GroupSpec, target: int, backend: "FakeBackend") -> None:
        self.spec, self.target, self.backend = spec, target, backend
        self.last_used = backend.clock()
        self._replicas: list[FakeReplica] = []
        self.state = GroupState.BUILDING
        self.message = "Building"
        if spec.model_name in backend.failing_models:
            self.state, self.message = GroupState.FAILED, backend.failing_models[spec.model_name]
        elif backend.auto_ready:
            self.scale()

    def scale(self) -> None:
        self._replicas = [FakeReplica(self) for _ in range(self.target)]
        self.state = GroupState.READY if self.target else GroupState.SCALED_TO_ZERO
        self.message = f"{self.target} replica(s) ready"

    def replicas(self) -> list[FakeReplica]:
        return [r for r in self._replicas if r.alive]

    def touch(self) -> None:
        self.last_used = self.backend.clock()

    def wake(self) -> None:
        self.last_used = self.backend.clock()
        if not self.replicas():
            self.backend.notify()

    async def wait_ready(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.replicas():
                return True
            await asyncio.sleep(0.01)
        return False

    def observe(self) -> GroupObs:
        return GroupObs(self.state, self.message, len(self.replicas()), self.target,
                        sum(r.in_flight for r in self._replicas), self.last_used)


class FakeBackend:
    def __init__(self, handler: Handler = echo_handler, auto_ready: bool = True,
                 clock: Callable[[], float] = time.monotonic, latency_s: float = 0.0) -> None:
        self.handler = handler
        self.auto_ready = auto_ready
        self.clock = clock
        self.latency_s = latency_s
        self.groups: dict[str, FakeGroup] = {}
        self.failing_models: dict[str, str] = {}
        self.stopped: list[str] = []
        self._notify: Callable[[], None] = lambda: None

    def set_notify(self, notify: Callable[[], None]) -> None:
        self._notify = notify

    def notify(self) -> None:
        self._notify()

    def ensure(self, spec: GroupSpec, target: int) -> None:
        g = self.groups.get(spec.key)
        if g is None:
            self.groups[spec.key] = FakeGroup(spec, target, self)
        elif g.target != target:
            g.target = target
            if g.state in (GroupState.READY, GroupState.SCALED_TO_ZERO):
                g.scale()

    async def stop(self, key: str) -> None:
        if self.groups.pop(key, None) is not None:
            self.stopped.append(key)

    def observe(self) -> dict[str, GroupObs]:
        return {k: g.observe() for k, g in self.groups.items()}

    def group(self, key: str) -> FakeGroup | None:
        return self.groups.get(key)

    def resource_usage(self, key: str) -> tuple[float, float]:
        return 0.0, 0.0

    async def close(self) -> None:
        self.groups.clear()
