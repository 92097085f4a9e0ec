"""`GET /api/2.0/ladle/serving-endpoints/{name}/metrics-history` (CAN_VIEW): the last hour
of the endpoint's request counters and latency histogram, as kept by
ladle.telemetry.history.MetricsHistory."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ladle.api.bodies import principal
from ladle.api.services import Services
from ladle.telemetry.history import MetricsHistory


def routes(svc: Services, history: MetricsHistory) -> list[Route]:
    async def metrics_history(request: Request) -> Response:
        rec, _ = await svc.endpoints.store.call(svc.endpoints.authorized, principal(request),
                                         request.path_params["name"], "CAN_VIEW")
        return JSONResponse({"interval_s": history.interval_s, "samples": history.samples(rec.id)})

    return [Route("/api/2.0/ladle/serving-endpoints/{name}/metrics-history", metrics_history, methods=["GET"])]
