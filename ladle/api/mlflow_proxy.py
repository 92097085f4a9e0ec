"""MLflow's own tracking server and registry, behind ladle's port and ladle's tokens:
authenticated requests on MLflow's paths are proxied to the embedded (or configured)
MLflow server, bodies streamed both ways."""

from __future__ import annotations

import asyncio

import httpx
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from ladle.schemas.errors import ApiError

PREFIXES = (
    "/api/2.0/mlflow", "/api/3.0/mlflow", "/api/2.0/mlflow-artifacts", "/ajax-api",
    "/mlflow-artifacts", "/get-artifact", "/model-versions/get-artifact",
)
HOP_HEADERS = {"host", "connection", "keep-alive", "transfer-encoding", "te", "upgrade",
               "proxy-authorization", "authorization", "content-length"}


def routes(mlflow_url: str, token: str | None) -> list[Route]:
    client = httpx.AsyncClient(base_url=mlflow_url, timeout=httpx.Timeout(300.0, connect=10.0))
    host = httpx.URL(mlflow_url).netloc.decode()

    async def proxy(request: Request) -> Response:
        headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP_HEADERS}
        headers["host"] = host
        if "content-length" in request.headers:  # MLflow's WSGI app does not read chunked bodies
            headers["content-length"] = request.headers["content-length"]
        if token:
            headers["authorization"] = f"Bearer {token}"
        req = client.build_request(
            request.method, request.url.path, params=request.query_params, headers=headers,
            content=request.stream(),
        )
        try:
            upstream = await _send(client, req)
        except httpx.HTTPError as e:
            raise ApiError("TEMPORARILY_UNAVAILABLE",
                           f"The MLflow tracking server is not reachable yet: {e}", 503,
                           headers={"Retry-After": "1"}) from None
        out_headers = {k: v for k, v in upstream.headers.items()
                       if k.lower() not in HOP_HEADERS and k.lower() != "content-encoding"}
        return StreamingResponse(upstream.aiter_raw(), status_code=upstream.status_code,
                                 headers=out_headers, background=BackgroundTask(upstream.aclose))

    async def _send(client: httpx.AsyncClient, req: httpx.Request) -> httpx.Response:
        # The embedded server takes a while to start; wait for it rather than fail.
        for _ in range(240):
            try:
                return await client.send(req, stream=True)
            except httpx.ConnectError:
                await asyncio.sleep(0.25)
        return await client.send(req, stream=True)

    methods = ["GET", "POST", "PUT", "PATCH", "DELETE"]
    return [Route(p + "{rest:path}", proxy, methods=methods) for p in PREFIXES]
