"""The request path, in one place: authorize -> read body -> route -> replica -> respond,
with metrics. (Authentication runs before, in AuthMiddleware.) Holds only the read-only
routing view the control plane publishes; no store reads per request."""

from __future__ import annotations

import time
from typing import Callable

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from ladle.gateway.pool import ReplicaPool
from ladle.schemas.errors import ApiError
from ladle.schemas.principal import Principal, at_least
from ladle.schemas.routing import EndpointRoute, EntityRoute
from ladle.telemetry.metrics import MetricsHub

LevelOf = Callable[[Principal, str], str | None]


class Gateway:
    def __init__(self, pool: ReplicaPool, metrics: MetricsHub, level_of: LevelOf,
                 max_payload_bytes: int, exists: Callable[[str], bool]) -> None:
        self.pool = pool
        self.metrics = metrics
        self.level_of = level_of
        self.max_payload = max_payload_bytes
        self.exists = exists
        self.routes: dict[str, EndpointRoute] = {}

    def publish(self, routes: dict[str, EndpointRoute]) -> None:
        self.routes = routes  # one atomic swap: a request sees the old view or the new one

    def _route(self, p: Principal, name: str) -> EndpointRoute:
        route = self.routes.get(name)
        if route is None:
            if self.exists(name):
                raise ApiError("TEMPORARILY_UNAVAILABLE",
                               f"Endpoint '{name}' is not ready yet; retry when its state is READY.",
                               503, headers={"Retry-After": "2"})
            raise ApiError("RESOURCE_DOES_NOT_EXIST", f"Endpoint with name '{name}' does not exist.")
        lvl = self.level_of(p, route.id)
        if lvl is None:
            raise ApiError("RESOURCE_DOES_NOT_EXIST", f"Endpoint with name '{name}' does not exist.")
        if not at_least(lvl, "CAN_QUERY"):
            raise ApiError("PERMISSION_DENIED",
                           f"Principal '{p.name}' does not have CAN_QUERY permission on endpoint '{name}'.")
        return route

    async def _body(self, request: Request) -> bytes:
        cl = request.headers.get("content-length")
        if cl and cl.isdigit() and int(cl) > self.max_payload:
            raise _too_large(self.max_payload)
        chunks, size = [], 0
        async for c in request.stream():
            size += len(c)
            if size > self.max_payload:
                raise _too_large(self.max_payload)
            chunks.append(c)
        return b"".join(chunks)

    async def invoke(self, request: Request, name: str, served: str | None = None) -> Response:
        t0 = time.perf_counter()
        p: Principal = request.scope["state"]["principal"]
        route = self._route(p, name)
        if served is not None:
            entity = route.entities.get(served)
            if entity is None:
                raise ApiError("RESOURCE_DOES_NOT_EXIST",
                               f"Served model '{served}' does not exist in endpoint '{name}'.")
        else:
            entity = route.pick()
        m = self.metrics.for_endpoint(route.id)
        try:
            body = await self._body(request)
            return await self._send(request, route, entity, body, m, t0)
        except ApiError as e:
            m.observe(entity.name, e.status, (time.perf_counter() - t0) * 1000)
            e.headers.setdefault("served-model-name", entity.name)
            raise

    async def _send(self, request: Request, route: EndpointRoute, entity: EntityRoute, body: bytes,
                    m, t0: float) -> Response:
        if entity.external_model is not None:
            raise ApiError("NOT_IMPLEMENTED",
                           f"Served entity '{entity.name}' is an external model; external models are "
                           "not served by this ladle version.", 501)
        meta = {"content_type": _content_type(request.headers.get("content-type")), "path": "invocations"}
        reply = await self.pool.call(entity.key, entity.name, meta, body)
        headers = {"served-model-name": entity.name}
        if reply.content_type.startswith("text/event-stream"):
            async def stream():
                try:
                    async for c in reply.chunks:
                        yield c
                finally:
                    m.observe(entity.name, reply.status, (time.perf_counter() - t0) * 1000)
            return StreamingResponse(stream(), status_code=reply.status, media_type=reply.content_type,
                                     headers=headers)
        out = await reply.read()
        m.observe(entity.name, reply.status, (time.perf_counter() - t0) * 1000)
        return Response(out, status_code=reply.status, media_type=reply.content_type, headers=headers)


SCORING_TYPES = ("application/json", "text/csv", "application/vnd.apache.parquet")


def _content_type(given: str | None) -> str:
    """Databricks reads bodies as JSON unless told CSV or Parquet (curl -d sends a form type)."""
    if given and given.split(";")[0].strip().lower() in SCORING_TYPES:
        return given
    return "application/json"


def _too_large(limit: int) -> ApiError:
    return ApiError("INVALID_PARAMETER_VALUE",
                    f"Request payload exceeds the limit of {limit // (1024 * 1024)} MB.", 400)
