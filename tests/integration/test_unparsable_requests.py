"""A request uvicorn cannot parse (a request line over its parser's limit, a control character
in the target) gets a 400 in the API's error shape, on both of uvicorn's HTTP/1.1 protocols."""

from __future__ import annotations

import socket
import threading

import orjson
import pytest
import uvicorn

from ladle.support.bad_request import JsonErrorH11Protocol, http_protocol
from ladle.testing.waiting import wait_until


async def _app(scope, receive, send):
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain"), (b"content-length", b"2")]})
    await send({"type": "http.response.body", "body": b"ok"})


@pytest.fixture(params=["httptools", "h11"], scope="module")
def server(request):
    protocol = http_protocol() if request.param == "httptools" else JsonErrorH11Protocol
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(_app, http=protocol, log_level="critical", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    wait_until(lambda: server.started, 10, what="uvicorn to start")
    yield sock.getsockname()[1]
    server.should_exit = True
    thread.join(10)


def _raw(port: int, target: bytes) -> tuple[bytes, dict[bytes, bytes], bytes]:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(b"GET " + target + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status, *lines = head.split(b"\r\n")
    return status, {k.lower(): v.strip() for k, _, v in (ln.partition(b":") for ln in lines)}, body


# httptools (what the server runs) refuses a request line past 64 KiB; h11 only refuses one
# that arrives in pieces, and closes on the rest unread, so the client sees a reset instead.
@pytest.mark.parametrize("server", ["httptools"], indirect=True)
def test_an_overlong_query_is_a_400_in_the_error_shape(server):
    status, headers, body = _raw(server, b"/api/2.0/workspace/export?path=/" + b"x" * 200_000)
    assert status.split()[1] == b"400" and headers[b"content-type"] == b"application/json"
    err = orjson.loads(body)
    assert err["error_code"] == "BAD_REQUEST" and "too long" in err["message"]


def test_a_control_character_in_the_target_is_a_400_in_the_error_shape(server):
    status, headers, body = _raw(server, b"/api/2.0/workspace/export?path=\x01")
    assert status.split()[1] == b"400" and orjson.loads(body)["error_code"] == "BAD_REQUEST"


def test_a_good_request_is_served(server):
    status, _, body = _raw(server, b"/api/2.0/workspace/export?path=/a")
    assert status.split()[1] == b"200" and body == b"ok"
