"""`GET /api/2.0/apps/{name}/logs?tail_lines=N`: an app's log (its own output and the
runner's lines), last N lines (0 or absent: all of it, up to MAX_BYTES from the end), as
`{"logs": "<text>"}`. Needs CAN_MANAGE on the app (its output may say more than its users
should read)."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ladle.api.bodies import principal
from ladle.schemas.errors import invalid
from ladle.schemas.principal import Principal

MAX_TAIL_LINES = 100_000
MAX_BYTES = 4 * 1024 * 1024
BLOCK = 64 * 1024

Require = Callable[[Principal, str, str], Awaitable[None]]   # (caller, app, level); raises ApiError


def tail(path: Path, lines: int, max_bytes: int = MAX_BYTES) -> str:
    """The last `lines` lines of a file (0: all), reading backwards from its end (blocks)."""
    try:
        f = open(path, "rb")
    except FileNotFoundError:
        return ""
    with f:
        end = f.seek(0, os.SEEK_END)
        pos, data = end, b""
        while pos > 0 and end - pos < max_bytes and (lines == 0 or data.count(b"\n") <= lines):
            step = min(BLOCK, pos, max_bytes - (end - pos))
            pos -= step
            f.seek(pos)
            data = f.read(step) + data
    if pos > 0:       # started mid-line: drop the partial first line
        data = data.split(b"\n", 1)[1] if b"\n" in data else b""
    text = data.decode("utf-8", "replace")
    if lines:
        kept = text.splitlines()[-lines:]
        text = "\n".join(kept) + ("\n" if kept else "")
    return text


def routes(log_path: Callable[[str], Path], require: Require) -> list[Route]:
    async def logs(request: Request) -> Response:
        name = request.path_params["name"]
        raw = request.query_params.get("tail_lines", "0")
        try:
            n = int(raw)
        except ValueError:
            n = -1
        if not 0 <= n <= MAX_TAIL_LINES:
            raise invalid(f"tail_lines: must be an integer from 0 (everything) to {MAX_TAIL_LINES}, not {raw[:32]!r}")
        await require(principal(request), name, "CAN_MANAGE")
        return JSONResponse({"logs": await asyncio.to_thread(tail, log_path(name), n)})

    return [Route("/api/2.0/apps/{name}/logs", logs, methods=["GET"])]
