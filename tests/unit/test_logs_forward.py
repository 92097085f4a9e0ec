"""Who answers for a served entity's logs: the server running the reconciler announces its
URL (Peers); another server passes the request to it, and answers itself when the owner is
this server, unknown, or unreachable, or when the request was passed already."""

from __future__ import annotations

from starlette.requests import Request

from ladle.api.logs_forward import FORWARDED, from_owner
from ladle.telemetry.peers import Peers
from ladle.testing.process import free_port


class FakeRedis:
    def __init__(self) -> None:
        self.data: dict[str, bytes] = {}

    async def set(self, key, value, px=None):
        self.data[key] = value

    async def get(self, key):
        return self.data.get(key)


def _request(headers: dict[str, str] | None = None) -> Request:
    raw = [(k.encode(), v.encode()) for k, v in (headers or {}).items()]
    return Request({"type": "http", "method": "GET", "path": "/api/2.0/serving-endpoints/e/served-models/m/logs",
                    "headers": raw, "query_string": b""})


async def test_the_leader_announces_itself_and_only_the_others_see_an_owner():
    redis, leading = FakeRedis(), {"a": True, "b": False}
    a = Peers(redis, "a", "http://a:1", lambda: leading["a"])
    b = Peers(redis, "b", "http://b:2", lambda: leading["b"])
    await b.announce()                 # not leading: announces nothing
    assert await a.leader_url() is None and await b.leader_url() is None
    await a.announce()
    assert await b.leader_url() == "http://a:1" and await a.leader_url() is None
    leading.update(a=False, b=True)    # takeover
    await b.announce()
    assert await a.leader_url() == "http://b:2" and await b.leader_url() is None


async def test_this_server_answers_itself_when_it_should():
    redis = FakeRedis()
    me = Peers(redis, "me", "http://me:1", lambda: False)
    assert await from_owner(_request(), None) is None                 # one server: no Redis
    assert await from_owner(_request(), me) is None                   # no owner known
    owner = Peers(redis, "owner", f"http://127.0.0.1:{free_port()}", lambda: True)
    await owner.announce()
    assert await from_owner(_request({FORWARDED: "1"}), me) is None   # passed already: no loops
    assert await from_owner(_request({"authorization": "Bearer x"}), me, timeout_s=2) is None   # unreachable
