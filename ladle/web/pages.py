"""The browser UI: a small single-page app (vanilla ES modules, hand-written CSS) served as
static files from this package. No build step and no Node.js: the files under `static/` are
what the browser runs. Every page talks to the public HTTP API with the user's token, so
the UI has no back door; these routes serve only the shell and its assets (public paths in
`ladle.gateway.auth`)."""

from __future__ import annotations

import hashlib
from pathlib import Path

from starlette.requests import Request
from starlette.responses import FileResponse, RedirectResponse, Response
from starlette.routing import Route

STATIC_DIR = Path(__file__).parent / "static"
MEDIA_TYPES = {
    ".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml", ".html": "text/html; charset=utf-8", ".json": "application/json",
}
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; "
        "form-action 'self'"),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}


def _etag(path: Path) -> str:
    st = path.stat()
    return '"' + hashlib.sha1(f"{path.name}:{st.st_size}:{st.st_mtime_ns}".encode()).hexdigest()[:20] + '"'


def _file(request: Request, path: Path) -> Response:
    etag = _etag(path)
    headers = {"ETag": etag, "Cache-Control": "no-cache", **SECURITY_HEADERS}
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers=headers)
    media = MEDIA_TYPES.get(path.suffix, "application/octet-stream")
    return FileResponse(path, media_type=media, headers=headers)


def _resolve(rel: str) -> Path | None:
    root = STATIC_DIR.resolve()
    target = (root / rel).resolve()
    if not target.is_relative_to(root) or not target.is_file():
        return None
    return target


def routes() -> list[Route]:
    async def index(request: Request) -> Response:
        return _file(request, STATIC_DIR / "index.html")

    async def root(request: Request) -> Response:
        return RedirectResponse("/ui/endpoints", status_code=307)

    async def static(request: Request) -> Response:
        path = _resolve(request.path_params["path"])
        if path is None:
            return Response("Not found", status_code=404, media_type="text/plain")
        return _file(request, path)

    async def favicon(request: Request) -> Response:
        return _file(request, STATIC_DIR / "favicon.svg")

    return [
        Route("/", root, methods=["GET"]),
        Route("/ui", index, methods=["GET"]),
        Route("/ui/{rest:path}", index, methods=["GET"]),
        Route("/static/{path:path}", static, methods=["GET", "HEAD"]),
        Route("/favicon.ico", favicon, methods=["GET"]),
    ]
