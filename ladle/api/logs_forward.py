"""Logs of a served entity asked of a server that does not hold them: the request is passed,
with the caller's own credentials, to the server that runs the reconciler (whose disk has
the replicas' logs); that server authorizes it again. A server that cannot be reached leaves
the answer to this one (its own copy, possibly older)."""

from __future__ import annotations

import logging

import httpx
from starlette.requests import Request
from starlette.responses import Response

from ladle.telemetry.peers import Peers

log = logging.getLogger("ladle.api")
FORWARDED = "x-ladle-forwarded"    # set on a passed request: the receiver answers itself
PASSED = ("authorization", "cookie")


async def from_owner(request: Request, peers: Peers | None, timeout_s: float = 10.0) -> Response | None:
    """The owner's answer, or None when this server should answer itself."""
    if peers is None or request.headers.get(FORWARDED):
        return None
    try:
        url = await peers.leader_url()
    except Exception:
        log.warning("cannot look up the server that runs the reconciler", exc_info=True)
        return None
    if url is None:
        return None
    headers = {h: request.headers[h] for h in PASSED if h in request.headers}
    headers[FORWARDED] = "1"
    try:
        async with httpx.AsyncClient(timeout=timeout_s) as client:
            r = await client.get(url.rstrip("/") + request.url.path, headers=headers)
    except httpx.HTTPError:
        log.warning("the server at %s did not answer for logs; answering with this one's", url, exc_info=True)
        return None
    return Response(r.content, status_code=r.status_code, media_type=r.headers.get("content-type"))
