"""The replica pool: a replica that dies mid-answer is retried on another, never a 500."""

import asyncio
from typing import AsyncIterator

import pytest

from ladle.gateway.pool import ReplicaPool
from ladle.runtimes.base import Reply, ReplicaGone
from ladle.runtimes.fake import FakeBackend, FakeReplica
from ladle.schemas.replicas import GroupSpec
from ladle.schemas.errors import ApiError

pytestmark = pytest.mark.unit


class DiesAfterHead(FakeReplica):
    """Sends the head of its answer, then is killed before the body."""

    async def call(self, meta: dict, body: bytes) -> Reply:
        self.dead = True

        async def chunks() -> AsyncIterator[bytes]:
            raise ReplicaGone("the replica serving this request stopped mid-response")
            yield b""

        return Reply(200, "application/json", chunks())


def _pool(replicas: list[type[FakeReplica]]) -> tuple[ReplicaPool, FakeBackend]:
    backend = FakeBackend()
    spec = GroupSpec(key="k", endpoint_id="e1", endpoint_name="ep", entity_name="m-1", model_name="m",
                     model_version="1")
    backend.ensure(spec, len(replicas))
    group = backend.group("k")
    group._replicas = [cls(group) for cls in replicas]
    return ReplicaPool(backend, timeout_s=5, cold_start_timeout_s=0.1), backend


def test_a_replica_dying_between_head_and_body_is_retried_on_another():
    pool, _ = _pool([DiesAfterHead, FakeReplica])
    reply = asyncio.run(pool.call("k", "m-1", {}, b"{}"))
    assert reply.status == 200
    assert asyncio.run(reply.read()) == b'{"predictions": ["m-1"]}'


def test_every_replica_dying_mid_answer_is_a_503_with_retry_after():
    pool, _ = _pool([DiesAfterHead, DiesAfterHead])
    with pytest.raises(ApiError) as e:
        asyncio.run(pool.call("k", "m-1", {}, b"{}"))
    assert e.value.status == 503 and e.value.error_code == "TEMPORARILY_UNAVAILABLE"
    assert e.value.headers["Retry-After"] == "1"
