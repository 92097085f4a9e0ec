"""The browser UI's routes. (The Serving page is built in ladle/web/.)"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

INDEX = """<!doctype html><html lang="en"><head><meta charset="utf-8"><title>ladle</title></head>
<body><h1>ladle</h1><p>The serving API is at <code>/api/2.0/serving-endpoints</code>.</p></body></html>"""


def routes() -> list[Route]:
    async def index(request: Request) -> Response:
        return HTMLResponse(INDEX)

    return [Route("/", index, methods=["GET"])]
