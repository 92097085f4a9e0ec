"""On a shared database the gateway looks a name it does not serve up before answering 404:
an unknown one every time, one known as not ready at most every MISS_RETRY_S (another server
may have made it ready a moment ago; a provisioning endpoint's callers cost no store read each)."""

import asyncio

import pytest

from ladle.gateway import pipeline
from ladle.gateway.pipeline import Gateway
from ladle.gateway.pool import ReplicaPool
from ladle.runtimes.fake import FakeBackend
from ladle.schemas.errors import ApiError
from ladle.schemas.principal import Principal
from ladle.telemetry.metrics import MetricsHub

ADMIN = Principal(name="admin", is_admin=True)


def gateway(looked: list[str]) -> Gateway:
    async def on_miss(name: str) -> None:
        looked.append(name)
    gw = Gateway(ReplicaPool(FakeBackend(), 5, 5), MetricsHub(), lambda p, eid: "CAN_MANAGE", 1 << 20,
                 on_miss=on_miss)
    gw.publish({}, {"building": ("e1", ("m",))})
    return gw


def test_a_not_ready_name_is_looked_up_again_at_most_every_interval(monkeypatch):
    looked: list[str] = []
    gw = gateway(looked)

    async def ask(name: str) -> None:
        with pytest.raises(ApiError):
            await gw.authorized_route(ADMIN, name)

    async def go() -> None:
        for _ in range(3):
            await ask("building")
        assert looked == ["building"]               # once, not on every request
        for _ in range(2):
            await ask("unknown")
        assert looked == ["building", "unknown", "unknown"]   # an unknown name: every time
        monkeypatch.setattr(pipeline, "MISS_RETRY_S", 0.0)
        await ask("building")
        assert looked[-1] == "building"             # the interval passed: looked up again
    asyncio.run(go())
