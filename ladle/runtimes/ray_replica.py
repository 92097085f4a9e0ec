"""The gateway's views of a Ray replica group's replicas (ray_group.RayGroup.replicas()):
`RayReplica` calls through the Serve handle; `DirectReplica` reaches a Serve replica on this
machine over its worker's socket (ladle's framed protocol), skipping the actor call."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any, AsyncIterator

from ladle.runtimes import ray_serve as rs
from ladle.runtimes.base import ReplicaGone, Reply
from ladle.runtimes.local_replica import AttachedReplica

if TYPE_CHECKING:
    from ladle.runtimes.ray_group import RayGroup

log = logging.getLogger("ladle.runtimes.ray")


class RayReplica:
    """One running Serve replica as the gateway sees it: every view sends through the
    application's handle; `in_flight` counts this server's requests on the view."""

    def __init__(self, group: "RayGroup") -> None:
        self.group = group
        self.in_flight = 0
        self.retired = False

    @property
    def alive(self) -> bool:
        return not self.retired and self.group.handle is not None

    async def call(self, meta: dict, body: bytes) -> Reply:
        handle = self.group.stream_handle
        if handle is None or self.retired:
            raise ReplicaGone("the Ray Serve application is not available")
        self._enter()
        gen = None
        try:
            gen = handle.remote(meta, body)
            head = await gen.__anext__()  # {"status", "content_type"}, then the body's chunks
        except BaseException as e:
            self._leave()
            if gen is not None and isinstance(e, asyncio.CancelledError):
                _cancel(gen)
            raise rs.translate(e, "the replica serving this request stopped; retry the request") from None

        async def chunks() -> AsyncIterator[bytes]:
            finished = False
            try:
                async for chunk in gen:
                    self.group.touch()
                    yield chunk
                finished = True
            except (GeneratorExit, asyncio.CancelledError):
                raise
            except Exception as e:
                raise rs.translate(e, "the replica serving this request stopped mid-response") from None
            finally:
                self._leave()
                if not finished:
                    _cancel(gen)  # the client went away: Serve cancels the replica's generator

        return Reply(int(head["status"]), head.get("content_type") or "application/json", chunks())

    def _enter(self) -> None:
        self.in_flight += 1
        self.group.load.enter()
        self.group.touch()

    def _leave(self) -> None:
        self.in_flight -= 1
        self.group.load.leave()
        self.group.touch()


class DirectReplica(RayReplica):
    """A Serve replica on this machine, sent to on its worker's socket."""

    def __init__(self, group: "RayGroup", client: AttachedReplica) -> None:
        super().__init__(group)
        self.client = client

    @property
    def alive(self) -> bool:
        return not self.retired and self.client.alive

    async def call(self, meta: dict, body: bytes) -> Reply:
        self._enter()
        try:
            reply = await self.client.call(meta, body)
        except BaseException:
            self._leave()
            raise

        async def chunks() -> AsyncIterator[bytes]:
            try:
                async for chunk in reply.chunks:
                    self.group.touch()
                    yield chunk
            finally:
                self._leave()
                await reply.chunks.aclose()   # closed early: the worker cancels the request

        return Reply(reply.status, reply.content_type, chunks(), reply.spans)   # a traced request's model spans


def _pid_of(socket_path: str) -> int | None:
    """The actor pid a direct socket is named after (`<pid>.sock`)."""
    stem = Path(socket_path).stem
    return int(stem) if stem.isdigit() else None


def _cancel(gen: Any) -> None:
    try:
        gen.cancel()
    except Exception:
        pass
