"""Who is calling an app, and what the app is told about them: shared by the app's HTTP proxy
(api/app_proxy.py) and its WebSocket proxy (api/app_ws.py).

A caller is named by a bearer token (as on every route; a token scoped to serving endpoints
is refused) or by the app's session cookie (api/app_sign_in.py), which names one app. The app
receives X-Forwarded-Email, -User and -Preferred-Username (the caller's name), -Access-Token
(a short-lived ladle JWT acting as the caller, reused until near its expiry), -Host, -Proto,
-For and -Prefix; whatever X-Forwarded-* headers the caller sent are dropped."""

from __future__ import annotations

import dataclasses
import time
from typing import Any, Awaitable, Callable

from starlette.requests import HTTPConnection

from ladle.api import app_sign_in
from ladle.control.oauth_keys import SigningKeys
from ladle.schemas.errors import ApiError
from ladle.schemas.principal import Principal

ACCESS_TTL_S = 900

Authenticate = Callable[[str], Awaitable[Principal | None]]
Verify = Callable[[str], Awaitable[dict[str, Any] | None]]
RequireUse = Callable[[Principal, str], Awaitable[None]]   # raises ApiError (missing app, no CAN_USE)
Port = Callable[[str], int | None]


def is_forwarded(header: str) -> bool:
    """A header only the proxy may set."""
    h = header.lower()
    return h.startswith("x-forwarded-") or h == "x-real-ip"


class AppGate:
    def __init__(self, port: Port, authenticate: Authenticate, verify: Verify, keys: SigningKeys,
                 require_use: RequireUse) -> None:
        self.port = port
        self.authenticate = authenticate
        self.verify = verify
        self.keys = keys
        self.require_use = require_use
        self._tokens: dict[tuple[str, str, str], tuple[str, float]] = {}

    async def caller(self, conn: HTTPConnection, name: str) -> Principal | None:
        """The caller (None: no credentials at all); ApiError for a bad or unfit token."""
        auth = conn.headers.get("authorization", "")
        if auth[:7].lower() == "bearer ":
            p = await self.authenticate(auth[7:].strip())
            if p is None:
                raise ApiError("UNAUTHENTICATED", "Invalid access token.", 401)
            if p.endpoints is not None:
                raise ApiError("PERMISSION_DENIED", "This token is scoped to querying serving endpoints; "
                               "it cannot open an app.")
            if p.model_scope is not None:
                raise ApiError("PERMISSION_DENIED", "This token reads one model version; it cannot open an app.")
            return p
        session = conn.cookies.get(app_sign_in.COOKIE)
        if session:
            claims = await self.verify(session)
            if claims and claims.get("ladle_app") == name:
                p = await self.authenticate(session)
                if p is not None:
                    return dataclasses.replace(p, endpoints=None, auth_type="app-session")
        return None

    def access_token(self, conn: HTTPConnection, name: str, p: Principal) -> str:
        key = (name, p.kind, p.name)
        hit = self._tokens.get(key)
        if hit is None or hit[1] - 60 < time.time():
            if len(self._tokens) > 10_000:
                self._tokens.clear()
            claims = {"iss": str(conn.base_url).rstrip("/") + "/oidc", "sub": p.name, "ladle_kind": p.kind,
                      "client_id": f"app:{name}", "scope": "all-apis"}
            hit = (self.keys.issue(claims, ACCESS_TTL_S), time.time() + ACCESS_TTL_S)
            self._tokens[key] = hit
        return hit[0]

    def forwarded(self, conn: HTTPConnection, name: str, p: Principal, scheme: str) -> list[tuple[str, str]]:
        client_ip = conn.client.host if conn.client else ""
        return [("x-forwarded-email", p.name), ("x-forwarded-user", p.name),
                ("x-forwarded-preferred-username", p.name),
                ("x-forwarded-access-token", self.access_token(conn, name, p)),
                ("x-forwarded-host", conn.headers.get("host", "")), ("x-forwarded-proto", scheme),
                ("x-forwarded-for", client_ip), ("x-real-ip", client_ip), ("x-forwarded-prefix", f"/apps/{name}")]

    def app_cookies(self, conn: HTTPConnection) -> str:
        """The caller's cookies but ladle's session."""
        return "; ".join(c for c in conn.headers.get("cookie", "").split("; ")
                         if c and not c.startswith(app_sign_in.COOKIE + "="))
