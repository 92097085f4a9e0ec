"""The caller's address across the relay: a gateway worker names it on each relayed request,
the server believes it only on its Unix socket (no client address), and drops it elsewhere."""

import asyncio

import httpx

from ladle.api.server_relay import CLIENT, ServerRelay, relayed_client


def seen_by_server(scope_client, headers):
    got = {}

    async def app(scope, receive, send):
        got["client"], got["headers"] = scope["client"], dict(scope["headers"])

    scope = {"type": "http", "client": scope_client, "headers": headers}
    asyncio.run(relayed_client(app)(scope, None, None))
    return got


def test_the_server_takes_the_relayed_address_only_on_its_unix_socket():
    got = seen_by_server(None, [(b"host", b"ladle"), (CLIENT, b"10.1.2.3 5555")])
    assert got["client"] == ("10.1.2.3", 5555) and CLIENT not in got["headers"]
    spoof = seen_by_server(("203.0.113.9", 4000), [(CLIENT, b"10.1.2.3 5555")])   # over TCP
    assert spoof["client"] == ("203.0.113.9", 4000) and CLIENT not in spoof["headers"]


def test_the_worker_names_its_caller_and_drops_the_callers_own_claim():
    sent = {}

    def upstream(request: httpx.Request) -> httpx.Response:
        sent["claims"] = request.headers.get_list(CLIENT.decode())
        return httpx.Response(200, stream=httpx.ByteStream(b"ok"))

    relay = ServerRelay(httpx.AsyncClient(transport=httpx.MockTransport(upstream)), "/nonexistent")
    scope = {"type": "http", "method": "GET", "path": "/ui/", "raw_path": b"/ui/", "query_string": b"",
             "client": ("198.51.100.7", 61000), "headers": [(b"host", b"x"), (CLIENT, b"1.1.1.1 1")]}
    out = []

    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(msg):
        out.append(msg)
    asyncio.run(relay(scope, receive, send))
    assert out[0]["status"] == 200
    assert sent["claims"] == ["198.51.100.7 61000"]
