"""Control-plane routes under /api/2.0/serving-endpoints (create, get, list, delete, config,
AI Gateway, rate limits, tags, notifications, telemetry, logs, metrics, OpenAPI).

Store reads run on the store's threads (`Store.call`), log and model-file reads on worker
threads: nothing here blocks the event loop the data plane shares."""

from __future__ import annotations

import asyncio

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ladle.api.bodies import json_body, principal, validate
from ladle.api.logs_forward import from_owner
from ladle.api.openapi_doc import endpoint_openapi
from ladle.api.services import Services
from ladle.control.dataplane import with_data_plane
from ladle.gateway.capabilities import check_supported
from ladle.schemas import endpoints as s
from ladle.schemas.endpoints import NAME_RE
from ladle.schemas.errors import ApiError
from ladle.schemas.gateway import AiGatewayConfig
from ladle.telemetry.logs import EntityLogs
from ladle.telemetry.metrics import CONTENT_TYPE


def routes(svc: Services) -> list[Route]:
    ep = svc.endpoints
    call = ep.store.call

    async def list_endpoints(request: Request) -> Response:
        return JSONResponse({"endpoints": await call(ep.list, principal(request))})

    async def create(request: Request) -> Response:
        req = validate(s.CreateEndpointRequest, s.lift_config_fields(await json_body(request)))
        check_supported(req.ai_gateway, "ai_gateway.")
        return JSONResponse(with_data_plane(await ep.create(principal(request), req), str(request.base_url)))

    async def create_pt(request: Request) -> Response:
        req = validate(s.CreatePtEndpointRequest,
                       s.lift_config_fields(await json_body(request), s.PT_CORE_FIELDS))
        check_supported(req.ai_gateway, "ai_gateway.")
        core = s.CreateEndpointRequest(
            name=req.name, config=req.config.as_core(), ai_gateway=req.ai_gateway,
            budget_policy_id=req.budget_policy_id, email_notifications=req.email_notifications,
            tags=req.tags)
        return JSONResponse(await ep.create(principal(request), core))

    async def get(request: Request) -> Response:
        out = await call(ep.get, principal(request), request.path_params["name"])
        if "task" not in out and (task := await ep.model_task(out)):   # an agent's, from its MLmodel
            out["task"] = task
        return JSONResponse(with_data_plane(out, str(request.base_url)))

    async def delete(request: Request) -> Response:
        await ep.delete(principal(request), request.path_params["name"])
        return JSONResponse({})

    async def update_config(request: Request) -> Response:
        body = await json_body(request)
        if "route_optimized" in body:   # fixed at creation, as in Databricks
            raise ApiError("INVALID_PARAMETER_VALUE", "route_optimized: can only be set when the endpoint "
                           "is created; create a new endpoint to change it.")
        cfg = validate(s.EndpointCoreConfigInput, body)
        return JSONResponse(await ep.update_config(principal(request), request.path_params["name"], cfg))

    async def update_pt_config(request: Request) -> Response:
        req = validate(s.UpdatePtConfigRequest, await json_body(request))
        return JSONResponse(await ep.update_config(
            principal(request), request.path_params["name"], req.config.as_core()))

    async def put_ai_gateway(request: Request) -> Response:
        cfg = validate(AiGatewayConfig, await json_body(request))
        check_supported(cfg)
        return JSONResponse(await ep.put_ai_gateway(principal(request), request.path_params["name"], cfg))

    async def put_rate_limits(request: Request) -> Response:
        req = validate(s.PutRateLimitsRequest, await json_body(request))
        return JSONResponse(await ep.put_rate_limits(principal(request), request.path_params["name"], req))

    async def patch_tags(request: Request) -> Response:
        req = validate(s.PatchTagsRequest, await json_body(request))
        return JSONResponse(await ep.patch_tags(principal(request), request.path_params["name"], req))

    async def notifications(request: Request) -> Response:
        req = validate(s.UpdateNotificationsRequest, await json_body(request))
        return JSONResponse(await ep.update_notifications(principal(request), request.path_params["name"], req))

    async def telemetry(request: Request) -> Response:
        req = validate(s.PatchTelemetryRequest, await json_body(request))
        return JSONResponse(await ep.patch_telemetry(principal(request), request.path_params["name"], req))

    def _entity_logs(request: Request) -> EntityLogs:   # blocking: store read, directories
        name, served = request.path_params["name"], request.path_params["served"]
        rec, _ = ep.authorized(principal(request), name, "CAN_VIEW")
        names = {e["name"] for c in (rec.active, rec.pending) if c for e in c["served_entities"]}
        # An entity of an earlier or failed config keeps its logs: they hold why an update failed.
        kept = NAME_RE.match(served) and (svc.settings.logs_dir / rec.id / served).is_dir()
        if served not in names and not kept:
            raise ApiError("RESOURCE_DOES_NOT_EXIST",
                           f"Served model '{served}' does not exist in endpoint '{name}'.")
        return EntityLogs(svc.settings.logs_dir, rec.id, served)

    async def build_logs(request: Request) -> Response:
        logs = await call(_entity_logs, request)
        # the logs are on the server that runs the reconciler: ask it when that is another one
        return await from_owner(request, svc.peers) or JSONResponse(
            {"logs": await asyncio.to_thread(logs.read_build)})

    async def logs(request: Request) -> Response:
        logs = await call(_entity_logs, request)
        return await from_owner(request, svc.peers) or JSONResponse(
            {"logs": await asyncio.to_thread(logs.read_server)})

    async def metrics(request: Request) -> Response:
        rec, _ = await call(ep.authorized, principal(request), request.path_params["name"], "CAN_VIEW")

        def usage() -> dict[str, tuple[float, float, int]]:
            out = {}
            for e in (rec.active or {}).get("served_entities", []):
                g = svc.backend.group(e["_key"])
                cpu, mem = svc.backend.resource_usage(e["_key"])
                out[e["name"]] = (cpu, mem, len(g.replicas()) if g else 0)
            return out

        # usage() reads /proc for every replica (psutil): off the event loop, like other file reads
        return Response(await asyncio.to_thread(svc.metrics.render, rec.id, usage), media_type=CONTENT_TYPE)

    async def openapi(request: Request) -> Response:
        rec, _ = await call(ep.authorized, principal(request), request.path_params["name"], "CAN_VIEW")
        doc = await asyncio.to_thread(endpoint_openapi, rec.name, rec.active or rec.pending,   # reads MLmodel files
                                      svc.endpoints.model_signature)
        return JSONResponse(doc)

    base = "/api/2.0/serving-endpoints"
    one = base + "/{name}"
    return [
        Route(base, list_endpoints, methods=["GET"]),
        Route(base + "/", list_endpoints, methods=["GET"]),
        Route(base, create, methods=["POST"]),
        Route(base + "/", create, methods=["POST"]),
        Route(base + "/pt", create_pt, methods=["POST"]),
        Route(base + "/pt/{name}/config", update_pt_config, methods=["PUT"]),
        Route(one, get, methods=["GET"]),
        Route(one, delete, methods=["DELETE"]),
        Route(one + "/config", update_config, methods=["PUT"]),
        Route(one + "/ai-gateway", put_ai_gateway, methods=["PUT"]),
        Route(one + "/rate-limits", put_rate_limits, methods=["PUT"]),
        Route(one + "/tags", patch_tags, methods=["PATCH"]),
        Route(one + "/notifications", notifications, methods=["PATCH"]),
        Route(one + "/telemetry-config", telemetry, methods=["PATCH"]),
        Route(one + "/metrics", metrics, methods=["GET"]),
        Route(one + "/openapi", openapi, methods=["GET"]),
        Route(one + "/served-models/{served}/logs", logs, methods=["GET"]),
        Route(one + "/served-models/{served}/build-logs", build_logs, methods=["GET"]),
    ]
