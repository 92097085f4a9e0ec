"""The app proxy in process, in front of a real app process run by the app runner: who may
come in (bearer token, the app's sign-in cookie, CAN_USE), what the app receives (the
X-Forwarded-* identity headers, not the caller's credentials), bodies both ways."""

from __future__ import annotations

import time
from urllib.parse import parse_qs, urlsplit

import httpx
import jwt
import pytest
from starlette.applications import Starlette

from ladle.api import app_logs, app_proxy
from ladle.api.app_gate import ACCESS_TTL_S, AppGate
from ladle.api.app_sign_in import COOKIE
from ladle.api.errors import api_error
from ladle.gateway.auth import AuthMiddleware
from ladle.schemas.errors import ApiError
from ladle.schemas.principal import Principal

from tests.integration.tiny_app import launch, runner  # noqa: F401 (fixture)

KEY = "test-signing-key-" + "x" * 32
USERS = {"alice-token": Principal("alice@example.com"), "bob-token": Principal("bob@example.com"),
         "scoped-token": Principal("alice@example.com", endpoints=frozenset({"ep"}))}


class Keys:
    """SigningKeys' issue, HS256 (the proxy only issues; verify is passed separately)."""

    def issue(self, claims, ttl_s):
        now = int(time.time())
        return jwt.encode({**claims, "iat": now, "exp": now + ttl_s}, KEY, algorithm="HS256")


async def verify(token):
    try:
        return jwt.decode(token, KEY, algorithms=["HS256"], options={"verify_aud": False})
    except jwt.InvalidTokenError:
        return None


async def authenticate(token):
    if token in USERS:
        return USERS[token]
    claims = await verify(token)
    if claims is None:
        return None
    return Principal(claims["sub"], endpoints=frozenset(claims["ladle_endpoints"])
                     if "ladle_endpoints" in claims else None)


async def require(p, name, level):
    if name != "demo":
        raise ApiError("RESOURCE_DOES_NOT_EXIST", f"App with name {name} does not exist.", 404)
    if p.name != "alice@example.com":
        raise ApiError("PERMISSION_DENIED", f"Principal {p.name} does not have {level} on app {name}.", 403)


def gate(port) -> AppGate:
    return AppGate(port, authenticate, verify, Keys(), lambda p, n: require(p, n, "CAN_USE"))


@pytest.fixture
async def proxied(runner):  # noqa: F811
    upstream = app_proxy.upstream_client()
    app = AuthMiddleware(Starlette(routes=[
        *app_proxy.routes(upstream, gate(runner.port)),
        *app_logs.routes(runner.log_path, require)], exception_handlers={ApiError: api_error}), authenticate)
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://ladle.test")
    yield client
    await client.aclose()
    await upstream.aclose()


async def test_the_app_sees_who_calls_and_never_the_callers_credentials(runner, proxied):  # noqa: F811
    r = await proxied.get("/apps/demo/hello/x?q=1&q=2", headers={"authorization": "Bearer alice-token"})
    assert r.status_code == 503 and r.json()["error_code"] == "TEMPORARILY_UNAVAILABLE"   # not deployed
    await runner.deploy(launch(runner, "d1"), lambda _: None)
    r = await proxied.get("/apps/demo/hello/x?q=1&q=2", headers={
        "authorization": "Bearer alice-token", "x-forwarded-email": "mallory@example.com",
        "cookie": f"{COOKIE}=abc; theirs=1"})
    assert r.status_code == 200, r.text
    seen = r.json()
    h = seen["headers"]
    assert seen["path"] == "/hello/x?q=1&q=2"
    assert h["x-forwarded-email"] == h["x-forwarded-user"] == h["x-forwarded-preferred-username"] == \
        "alice@example.com"
    assert h["x-forwarded-prefix"] == "/apps/demo" and h["x-forwarded-host"] == "ladle.test"
    assert h["x-forwarded-proto"] == "http"
    assert "authorization" not in h and h["cookie"] == "theirs=1"
    token = jwt.decode(h["x-forwarded-access-token"], KEY, algorithms=["HS256"])
    assert token["sub"] == "alice@example.com" and token["exp"] - token["iat"] == ACCESS_TTL_S

    # a body goes up and the answer comes back, the app's redirect kept inside its prefix
    r = await proxied.post("/apps/demo/redirect", content=b"hello" * 1000,
                           headers={"authorization": "Bearer alice-token"})
    assert r.status_code == 302 and r.content == (b"hello" * 1000)[::-1]
    assert r.headers["location"] == "/apps/demo/after" and r.headers["set-cookie"] == "app_cookie=1; Path=/"

    # who may not come in
    r = await proxied.get("/apps/demo/", headers={"authorization": "Bearer bob-token"})
    assert r.status_code == 403 and r.json()["error_code"] == "PERMISSION_DENIED"
    r = await proxied.get("/apps/demo/", headers={"authorization": "Bearer scoped-token"})
    assert r.status_code == 403 and "scoped" in r.json()["message"]
    r = await proxied.get("/apps/demo/", headers={"authorization": "Bearer wrong"})
    assert r.status_code == 401 and r.json()["error_code"] == "UNAUTHENTICATED"
    r = await proxied.get("/apps/other/", headers={"authorization": "Bearer alice-token"})
    assert r.status_code == 404


async def test_a_browser_signs_in_and_its_cookie_opens_this_app_only(runner, proxied):  # noqa: F811
    await runner.deploy(launch(runner, "d1"), lambda _: None)
    r = await proxied.get("/apps/demo/page?x=1", headers={"accept": "text/html"})
    assert r.status_code == 302
    where = urlsplit(r.headers["location"])
    assert where.path == "/apps/demo/.ladle/sign-in" and parse_qs(where.query)["next"] == ["/apps/demo/page?x=1"]
    r = await proxied.get(r.headers["location"])
    assert r.status_code == 200 and 'name="token"' in r.text and "demo" in r.text

    r = await proxied.post("/apps/demo/.ladle/sign-in", data={"token": "wrong", "next": "/apps/demo/page?x=1"})
    assert r.status_code == 401 and "Invalid access token" in r.text and "set-cookie" not in r.headers
    r = await proxied.post("/apps/demo/.ladle/sign-in", data={"token": "bob-token", "next": "/apps/demo/"})
    assert r.status_code == 403 and "CAN_USE" in r.text and "set-cookie" not in r.headers
    r = await proxied.post("/apps/demo/.ladle/sign-in", data={"token": "alice-token", "next": "https://evil.test/"})
    assert r.status_code == 303 and r.headers["location"] == "/apps/demo/"       # no open redirect
    r = await proxied.post("/apps/demo/.ladle/sign-in", data={"token": "alice-token", "next": "/apps/demo/page?x=1"})
    assert r.status_code == 303 and r.headers["location"] == "/apps/demo/page?x=1"
    cookie = r.headers["set-cookie"]
    assert "Path=/apps/demo/" in cookie and "HttpOnly" in cookie and "SameSite=lax" in cookie
    session = r.cookies[COOKIE]
    # the cookie cannot pass for a bearer token on the API: it is scoped to no endpoint
    assert (await authenticate(session)).endpoints == frozenset()

    r = await proxied.get("/apps/demo/page?x=1", headers={"cookie": f"{COOKIE}={session}"})
    assert r.status_code == 200 and r.json()["headers"]["x-forwarded-email"] == "alice@example.com"
    assert COOKIE not in r.json()["headers"].get("cookie", "")
    r = await proxied.get("/apps/other/", headers={"cookie": f"{COOKIE}={session}", "accept": "application/json"})
    assert r.status_code == 401     # a session for demo does not open another app


async def test_logs_tail_and_bad_tail_lines(runner, proxied):  # noqa: F811
    await runner.deploy(launch(runner, "d1"), lambda _: None)
    alice, bob = {"authorization": "Bearer alice-token"}, {"authorization": "Bearer bob-token"}
    assert (await proxied.get("/apps/demo/seen-in-log", headers=alice)).status_code == 200
    r = await proxied.get("/api/2.0/apps/demo/logs", headers=alice)
    assert r.status_code == 200
    logs = r.json()["logs"]
    assert "request /seen-in-log" in logs and "[ladle] deployment d1: listening" in logs
    r = await proxied.get("/api/2.0/apps/demo/logs?tail_lines=1", headers=alice)
    assert r.json()["logs"].count("\n") == 1
    for bad in ("-1", "x", "100001"):
        r = await proxied.get(f"/api/2.0/apps/demo/logs?tail_lines={bad}", headers=alice)
        assert r.status_code == 400 and "tail_lines" in r.json()["message"]
    r = await proxied.get("/api/2.0/apps/demo/logs", headers=bob)
    assert r.status_code == 403 and "CAN_MANAGE" in r.json()["message"]
    assert (await proxied.get("/api/2.0/apps/demo/logs")).status_code == 401


def test_tail_reads_the_last_lines(tmp_path):
    f = tmp_path / "log"
    f.write_text("".join(f"line {i}\n" for i in range(50_000)))
    assert app_logs.tail(f, 3) == "line 49997\nline 49998\nline 49999\n"
    assert app_logs.tail(f, 0).startswith("line 0\n")
    assert app_logs.tail(f, 0, max_bytes=100).endswith("line 49999\n")
    assert not app_logs.tail(f, 0, max_bytes=100).startswith("ine")
    assert app_logs.tail(tmp_path / "missing", 5) == ""
