"""WebSockets through the app proxy, in process, to a real WebSocket server standing in for
the app: messages both ways (text and bytes), the identity headers on the handshake, who is
refused (no CAN_USE, a session cookie from another origin, an app that is not running)."""

from __future__ import annotations

import threading

import pytest
from starlette.applications import Starlette
from starlette.testclient import TestClient
from starlette.websockets import WebSocketDisconnect
from websockets.sync.server import serve

from ladle.api import app_ws
from ladle.api.app_sign_in import COOKIE

from tests.integration.test_app_proxy import Keys, gate


@pytest.fixture
def echo():
    """A WebSocket server that first sends what it saw of the handshake, then echoes."""
    def handler(conn):
        h = conn.request.headers
        conn.send(f"{conn.request.path} {h.get('x-forwarded-email')} {h.get('authorization')} "
                  f"{h.get('cookie')} {h.get('x-forwarded-prefix')}")
        for msg in conn:
            if msg == "bye":
                conn.close(4001, "app says bye")
                return
            conn.send(msg)

    # close_timeout: a connection the proxy left open is dropped at shutdown within a second
    # (the default waited 10 s per connection)
    with serve(handler, "127.0.0.1", 0, close_timeout=1) as server:
        t = threading.Thread(target=server.serve_forever, daemon=True)
        t.start()
        yield server.socket.getsockname()[1]
        server.shutdown()
        t.join(5)


def client(port) -> TestClient:
    return TestClient(Starlette(routes=app_ws.routes(gate(lambda name: port))))


def test_messages_go_both_ways_with_the_callers_identity(echo):
    with client(echo).websocket_connect("/apps/demo/stream?x=1", headers={
            "authorization": "Bearer alice-token", "x-forwarded-email": "mallory@example.com"}) as ws:
        assert ws.receive_text() == "/stream?x=1 alice@example.com None None /apps/demo"
        ws.send_text("hello")
        assert ws.receive_text() == "hello"
        ws.send_bytes(b"\x00\x01")
        assert ws.receive_bytes() == b"\x00\x01"
        ws.send_text("bye")
        with pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_text()
        assert closed.value.code == 4001      # the app's close code reaches the caller


def test_a_session_cookie_works_from_this_origin_only(echo):
    session = Keys().issue({"sub": "alice@example.com", "ladle_kind": "user", "ladle_app": "demo",
                            "ladle_endpoints": []}, 600)
    cookie = f"{COOKIE}={session}; theirs=1"
    with client(echo).websocket_connect("/apps/demo/s", headers={"cookie": cookie,
                                                                 "origin": "http://testserver"}) as ws:
        assert ws.receive_text() == "/s alice@example.com None theirs=1 /apps/demo"
    with pytest.raises(WebSocketDisconnect) as refused:
        with client(echo).websocket_connect("/apps/demo/s", headers={"cookie": cookie,
                                                                     "origin": "http://evil.test"}):
            pass
    assert refused.value.code == app_ws.POLICY


@pytest.mark.parametrize("headers, port, code", [
    ({"authorization": "Bearer bob-token"}, None, app_ws.POLICY),       # no CAN_USE
    ({}, None, app_ws.POLICY),                                          # no credentials
    ({"authorization": "Bearer alice-token"}, 0, app_ws.TRY_AGAIN),     # not running
])
def test_who_is_refused(echo, headers, port, code):
    with pytest.raises(WebSocketDisconnect) as refused:
        with client(echo if port is None else None).websocket_connect("/apps/demo/s", headers=headers):
            pass
    assert refused.value.code == code
