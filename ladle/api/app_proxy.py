"""Apps reached through ladle: `/apps/<name>/<path>` is proxied to the app's process on its
loopback port, with the `/apps/<name>` prefix stripped (sent as X-Forwarded-Prefix).

Who calls: a bearer token as on every route, or (for browsers) the app's session cookie set by
its sign-in page (api/app_sign_in.py); a browser without either is sent to that page. The
caller needs CAN_USE on the app. The app receives what a Databricks App does:
X-Forwarded-Email, -User, -Preferred-Username (the signed-in principal's name) and
-Access-Token (a short-lived ladle JWT acting as that principal), plus -Host, -Proto, -For and
-Prefix. The caller's Authorization header, ladle's session cookie and any X-Forwarded-* header
it sent never reach the app. Bodies stream both ways; a redirect the app answers with an
absolute path is kept inside its prefix. Who the caller is and what the app is told:
api/app_gate.py; WebSockets: api/app_ws.py.

The gateway's AuthMiddleware lets `/apps/` through unauthenticated: this module authenticates.
"""

from __future__ import annotations

from urllib.parse import parse_qsl

import httpx
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response, StreamingResponse
from starlette.routing import Route

from ladle.api import app_sign_in
from ladle.api.app_gate import AppGate, is_forwarded
from ladle.schemas.errors import ApiError
from ladle.schemas.principal import Principal

HOP = {"host", "connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade",
       "proxy-authorization", "proxy-authenticate", "authorization", "cookie"}
MAX_SIGN_IN_FORM = 16 * 1024


def upstream_client() -> httpx.AsyncClient:
    """The proxy's connection pool to the apps; the composition root closes it."""
    return httpx.AsyncClient(timeout=httpx.Timeout(300.0, connect=10.0), follow_redirects=False)


def _error(e: ApiError) -> Response:
    return JSONResponse(e.body(), status_code=e.status, headers=e.headers)


def routes(client: httpx.AsyncClient, gate: AppGate) -> list[Route]:
    async def sign_in_page(request: Request) -> Response:
        name = request.path_params["name"]
        return app_sign_in.page(name, app_sign_in.safe_next(name, request.query_params.get("next")))

    async def sign_in(request: Request) -> Response:
        name = request.path_params["name"]
        body = b""
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_SIGN_IN_FORM:
                return app_sign_in.page(name, app_sign_in.prefix(name), "The form is too large.", 413)
        form = dict(parse_qsl(body.decode("utf-8", "replace")))
        next_path = app_sign_in.safe_next(name, form.get("next"))
        token = form.get("token", "").strip()
        try:
            p = await gate.authenticate(token) if token else None
        except ApiError as e:
            return app_sign_in.page(name, next_path, e.message, e.status)
        if p is None or p.endpoints is not None or p.model_scope is not None:
            return app_sign_in.page(name, next_path, "Invalid access token.", 401)
        try:
            await gate.require_use(p, name)
        except ApiError as e:
            return app_sign_in.page(name, next_path, e.message, e.status)
        session = gate.keys.issue({"sub": p.name, "ladle_kind": p.kind, "ladle_app": name, "ladle_endpoints": [],
                              "scope": "app-session"}, app_sign_in.SESSION_TTL_S)
        return app_sign_in.signed_in(name, next_path, session, request.url.scheme == "https")

    async def bare(request: Request) -> Response:
        return RedirectResponse(app_sign_in.prefix(request.path_params["name"]), status_code=308)

    async def proxy(request: Request) -> Response:
        name = request.path_params["name"]
        try:
            p = await gate.caller(request, name)
            if p is None:
                if request.method == "GET" and "text/html" in request.headers.get("accept", ""):
                    path = request.url.path + (f"?{request.url.query}" if request.url.query else "")
                    return RedirectResponse(app_sign_in.sign_in_url(name, path), status_code=302)
                raise ApiError("UNAUTHENTICATED", "Missing credentials: send 'Authorization: Bearer <token>' "
                               f"or sign in at {app_sign_in.prefix(name)}{app_sign_in.SIGN_IN}.", 401)
            await gate.require_use(p, name)
            upstream = gate.port(name)
            if upstream is None:
                raise ApiError("TEMPORARILY_UNAVAILABLE", f"App '{name}' is not running: see its app_status "
                               "and its logs.", 503, headers={"Retry-After": "5"})
        except ApiError as e:
            return _error(e)
        return await _forward(request, name, p, upstream)

    async def _forward(request: Request, name: str, p: Principal, upstream: int) -> Response:
        pfx = f"/apps/{name}"
        headers = [(k, v) for k, v in request.headers.items() if k.lower() not in HOP and not is_forwarded(k)]
        cookies = gate.app_cookies(request)
        if cookies:
            headers.append(("cookie", cookies))
        headers += gate.forwarded(request, name, p, request.url.scheme)
        path = "/" + request.path_params.get("path", "")
        query = request.url.query
        url = httpx.URL(f"http://127.0.0.1:{upstream}{path}", query=query.encode()) if query else \
            httpx.URL(f"http://127.0.0.1:{upstream}{path}")
        has_body = request.method not in ("GET", "HEAD", "OPTIONS") or "content-length" in request.headers
        req = client.build_request(request.method, url, headers=headers,
                                   content=request.stream() if has_body else None)
        try:
            resp = await client.send(req, stream=True)
        except httpx.HTTPError as e:
            return _error(ApiError("BAD_GATEWAY", f"App '{name}' did not answer: {type(e).__name__}.", 502))
        out = [(k, v) for k, v in resp.headers.multi_items() if k.lower() not in HOP - {"cookie"}]
        out = [(k, _inside(pfx, v) if k.lower() == "location" else v) for k, v in out]
        r = StreamingResponse(resp.aiter_raw(), status_code=resp.status_code, background=BackgroundTask(resp.aclose))
        r.raw_headers = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in out]
        return r

    methods = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]
    return [
        Route("/apps/{name}", bare, methods=methods),
        Route(f"/apps/{{name}}/{app_sign_in.SIGN_IN}", sign_in_page, methods=["GET"]),
        Route(f"/apps/{{name}}/{app_sign_in.SIGN_IN}", sign_in, methods=["POST"]),
        Route("/apps/{name}/{path:path}", proxy, methods=methods),
    ]


def _inside(pfx: str, location: str) -> str:
    """An absolute-path redirect from the app, kept under its prefix."""
    if location.startswith("/") and not location.startswith("//") and not location.startswith(pfx + "/"):
        return pfx + location
    return location
