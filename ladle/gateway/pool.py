"""Pick a replica of a served entity and send it a request: least loaded first, cold
start from zero, one retry on another replica when a replica dies before answering.

A whole (non-streaming) answer is read here, inside the retry: a replica killed between
sending the head of its answer and its body is retried like one killed before it, where
otherwise the half-read answer would surface as a 500. A stream is handed on as it comes
(its chunks may already have reached the client)."""

from __future__ import annotations

import asyncio
import random
from typing import AsyncIterator, Awaitable

from ladle.runtimes.base import ReplicaBackend, ReplicaGone, Reply
from ladle.schemas.errors import ApiError


class ReplicaPool:
    def __init__(self, backend: ReplicaBackend, timeout_s: float, cold_start_timeout_s: float) -> None:
        self.backend = backend
        self.timeout_s = timeout_s
        self.cold_start_timeout_s = cold_start_timeout_s

    async def call(self, key: str, entity: str, meta: dict, body: bytes) -> Reply:
        group = self.backend.group(key)
        if group is None:
            raise ApiError("TEMPORARILY_UNAVAILABLE",
                           f"Served entity '{entity}' has no running replicas yet; retry shortly.", 503)
        group.wake()
        tried: set[int] = set()
        for attempt in range(2):
            replicas = [r for r in group.replicas() if id(r) not in tried]
            if not replicas:
                if attempt == 0 and await group.wait_ready(self.cold_start_timeout_s):
                    replicas = group.replicas()
                if not replicas:
                    raise ApiError(
                        "TEMPORARILY_UNAVAILABLE",
                        f"Served entity '{entity}' has no ready replica; retry the request.", 503,
                        headers={"Retry-After": "1"})
            # least loaded; ties broken at random (the first replica would otherwise take every
            # tie, and each gateway process counts only its own in-flight requests)
            least = min(x.in_flight for x in replicas)
            r = random.choice([x for x in replicas if x.in_flight == least])
            tried.add(id(r))
            try:
                reply = await asyncio.wait_for(_whole(r.call(meta, body)), self.timeout_s)
                group.touch()  # idle time counts from the last answer
                return reply
            except asyncio.TimeoutError:
                raise ApiError("DEADLINE_EXCEEDED",
                               f"The request to served entity '{entity}' exceeded the timeout of "
                               f"{self.timeout_s:g}s.", 504) from None
            except ReplicaGone:
                continue
        raise ApiError("TEMPORARILY_UNAVAILABLE",
                       f"The replicas of served entity '{entity}' stopped while serving the request; "
                       "retry the request.", 503, headers={"Retry-After": "1"})


async def _whole(pending: Awaitable[Reply]) -> Reply:
    reply = await pending
    if reply.content_type.startswith("text/event-stream"):
        return reply
    body = await reply.read()
    return Reply(reply.status, reply.content_type, _once(body), reply.spans)


async def _once(body: bytes) -> AsyncIterator[bytes]:
    yield body
