"""The browser UI: a small single-page app (vanilla ES modules, hand-written CSS) served as
static files from this package. No build step and no Node.js: the files under `static/` are
what the browser runs. Every page talks to the public HTTP API with the user's token, so
the UI has no back door; these routes serve only the shell and its assets (public paths in
`ladle.gateway.auth`)."""

from __future__ import annotations

import mimetypes
from pathlib import Path

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

STATIC_DIR = Path(__file__).parent / "static"
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; "
        "form-action 'self'"),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}


class _Files(StaticFiles):
    """Starlette's static files (ETag and Last-Modified, 304 on a match, path checks), each
    answer revalidated by the browser (no-cache: a new ladle's UI is seen at once) and with
    the UI's security headers."""

    def file_response(self, full_path, stat_result, scope, status_code: int = 200) -> Response:
        response = super().file_response(full_path, stat_result, scope, status_code)
        response.headers.update({"Cache-Control": "no-cache", **SECURITY_HEADERS})
        return response


def routes() -> list[BaseRoute]:
    # Starlette types files by `mimetypes`, which reads the machine's /etc/mime.types: some
    # say application/javascript or nothing for ES modules and SVG
    mimetypes.add_type("text/javascript", ".js")
    mimetypes.add_type("image/svg+xml", ".svg")
    files = _Files(directory=STATIC_DIR)

    async def index(request: Request) -> Response:
        return await files.get_response("index.html", request.scope)

    async def root(request: Request) -> Response:
        return RedirectResponse("/ui/endpoints", status_code=307)

    async def favicon(request: Request) -> Response:
        return await files.get_response("favicon.svg", request.scope)

    return [
        Route("/", root, methods=["GET"]),
        Route("/ui", index, methods=["GET"]),
        Route("/ui/{rest:path}", index, methods=["GET"]),
        Mount("/static", app=files),
        Route("/favicon.ico", favicon, methods=["GET"]),
    ]
