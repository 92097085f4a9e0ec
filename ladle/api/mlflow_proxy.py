"""MLflow's own tracking server and registry, behind ladle's port, ladle's tokens and ladle's
registry permissions: authenticated requests on MLflow's paths are authorized for the caller
(api/mlflow_authz.py) and proxied to the embedded (or configured) MLflow server.

Bodies stream both ways, except the JSON bodies that must be read to authorize a call (the
request messages of MLflow's REST API, at most MAX_JSON_BODY bytes) and the answers ladle
acts on (creations, renames, deletions, searches). Artifact uploads and downloads are
authorized from their path alone and always stream."""

from __future__ import annotations

from typing import Any, Callable

import httpx
import orjson
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from ladle.api import mlflow_traces
from ladle.api.bodies import principal
from ladle.api.mlflow_authz import EXP, MODEL, SEARCHES, Authorizer, Lookups, message_of
from ladle.control.registry_acl import RegistryAcl
from ladle.control.registry_rules import match
from ladle.entities.registry import RESENDABLE
from ladle.schemas.errors import ApiError
from ladle.schemas.principal import Principal
from ladle.support.retry import retrying

PREFIXES = (
    "/api/2.0/mlflow", "/api/3.0/mlflow", "/api/2.0/mlflow-artifacts", "/ajax-api",
    "/mlflow-artifacts", "/get-artifact", "/model-versions/get-artifact",
)
HOP_HEADERS = {"host", "connection", "keep-alive", "transfer-encoding", "te", "upgrade",
               "proxy-authorization", "authorization", "content-length"}
MAX_JSON_BODY = 32 * 1024 * 1024
# Answers ladle must read even for admins: who created what, renames and deletions.
OWNERSHIP = {"own-experiment", "own-model", "rename-model", "forget-model"}


# How long a registry call waits for the registry to accept connections before answering 503
# TEMPORARILY_UNAVAILABLE. (The embedded one never refuses: its port listens for the server's
# whole life and a call waits in the backlog while it starts; a configured one may be down.)
REGISTRY_WAIT_S = 60.0


def upstream_client(mlflow_url: str, on_write: Callable[[], None] | None = None) -> httpx.AsyncClient:
    """The proxy's connection pool to the MLflow server; the composition root closes it.
    `on_write` is called when a write (not GET/HEAD) is sent and again when its answer comes."""
    hooks = {}
    if on_write is not None:
        async def request_hook(req: httpx.Request) -> None:
            if req.method not in ("GET", "HEAD"):
                on_write()

        async def response_hook(resp: httpx.Response) -> None:
            if resp.request.method not in ("GET", "HEAD"):
                on_write()
        hooks = {"request": [request_hook], "response": [response_hook]}
    return httpx.AsyncClient(base_url=mlflow_url, timeout=httpx.Timeout(300.0, connect=10.0), event_hooks=hooks)


def routes(client: httpx.AsyncClient, token: str | None, acl: RegistryAcl, lookups: Lookups) -> list[Route]:
    host = client.base_url.netloc.decode()
    auth = {"authorization": f"Bearer {token}"} if token else {}
    authz = Authorizer(acl, lookups)
    traces = mlflow_traces.TraceAuthz(acl, lookups)

    def _headers(request: Request, length: int | None = None) -> dict[str, str]:
        headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP_HEADERS}
        headers["host"] = host
        if length is not None:
            headers["content-length"] = str(length)
        elif "content-length" in request.headers:  # MLflow's WSGI app does not read chunked bodies
            headers["content-length"] = request.headers["content-length"]
        return {**headers, **auth}

    async def proxy(request: Request) -> Response:
        p = principal(request)
        trace_rule = None if p.is_admin else mlflow_traces.rule(request.method, request.url.path)
        if trace_rule is not None:                  # MLflow Tracing's reads (api/mlflow_traces.py)
            body = b"" if request.method == "GET" else await _read_bounded(request)
            await traces.check(p, *trace_rule, mlflow_traces.message(request.method, request.query_params, body))
            return await _stream(request, None if request.method == "GET" else body)
        rule, route_part = match(request.method, request.url.path)
        inspect = not p.is_admin or rule.after in OWNERSHIP
        if not inspect or rule.target in ("artifact", "admin") or (
                request.method == "GET" and request.query_params and not rule.after):
            # Authorized from the path or query alone (downloads and uploads stream).
            await authz.check(p, rule, route_part, message_of("GET", request.query_params, b"")
                              if request.method == "GET" else {})
            return await _stream(request)
        body = await _read_bounded(request)
        msg = message_of(request.method, request.query_params, body)
        await authz.check(p, rule, route_part, msg)
        if rule.after in SEARCHES and not p.is_admin:
            status, data = await authz.search(p, rule.after, msg, lambda m: _send_message(request, m))
            return JSONResponse(data, status_code=status)
        if rule.after in ("filter-runs", "filter-logged-models") and not p.is_admin:
            narrowed = authz.narrow(p, msg)
            if narrowed is None:
                return JSONResponse({})
            return await _stream(request, orjson.dumps(narrowed))   # runs and logged models: POST
        if not rule.after:       # authorized: the answer is not ladle's business, stream it
            return await _stream(request, body)
        upstream = await _send(request.method, request.url.path, request.query_params,
                               _headers(request, len(body)), body)
        if upstream.status_code == 200:
            await _after(p, rule.after, msg, upstream)
        return _buffered(upstream)

    async def _after(p: Principal, after: str, msg: dict[str, Any], upstream: httpx.Response) -> None:
        try:
            data = upstream.json()
        except ValueError:
            data = {}
        if after == "own-experiment":
            if data.get("experiment_id"):      # else nobody owns it: admins only
                await acl.own(EXP, str(data["experiment_id"]), p)
        elif after == "own-model":
            if data.get("registered_model", {}).get("name"):
                await acl.own(MODEL, data["registered_model"]["name"], p)
        elif after == "rename-model":
            await acl.rename(MODEL, str(msg["name"]), str(msg["new_name"]))
        elif after == "forget-model":
            await acl.forget(MODEL, str(msg["name"]))
        elif after == "check-experiment" and not p.is_admin:
            acl.require(p, EXP, str(data.get("experiment", {}).get("experiment_id")), "CAN_READ")

    async def _read_bounded(request: Request) -> bytes:
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > MAX_JSON_BODY:
                raise ApiError("INVALID_PARAMETER_VALUE",
                               f"The request body is larger than {MAX_JSON_BODY} bytes.", 413)
            chunks.append(chunk)
        return b"".join(chunks)

    async def _send_message(request: Request, msg: dict[str, Any]) -> httpx.Response:
        """The same call with another message (a search narrowed or paged)."""
        if request.method == "GET":
            params = [(k, str(x)) for k, v in msg.items() for x in (v if isinstance(v, list) else [v])]
            return await _send("GET", request.url.path, httpx.QueryParams(params), _headers(request, 0), b"")
        body = orjson.dumps(msg)
        return await _send(request.method, request.url.path, request.query_params,
                           _headers(request, len(body)), body)

    async def _send(method: str, path: str, params: Any, headers: dict[str, str], body: bytes) -> httpx.Response:
        req = client.build_request(method, path, params=params, headers=headers, content=body)
        upstream = await _connect(req)
        try:
            await upstream.aread()
        finally:
            await upstream.aclose()
        return upstream

    def _buffered(upstream: httpx.Response) -> Response:
        return Response(upstream.content, status_code=upstream.status_code, headers=_out_headers(upstream))

    async def _stream(request: Request, body: bytes | None = None) -> Response:
        """The call passed on, its answer streamed back; the request body streamed too unless
        it was read already (`body`)."""
        headers = _headers(request, None if body is None else len(body))
        if body is None and request.method in ("GET", "HEAD") and not (
                {"content-length", "transfer-encoding"} & set(request.headers.keys())):
            body = b""    # it has none: in hand, the request can be sent again (_send_retrying)
        req = client.build_request(request.method, request.url.path, params=request.query_params,
                                   headers=headers, content=request.stream() if body is None else body)
        upstream = await _connect(req)
        return StreamingResponse(upstream.aiter_raw(), status_code=upstream.status_code,
                                 headers=_out_headers(upstream), background=BackgroundTask(upstream.aclose))

    async def _connect(req: httpx.Request) -> httpx.Response:
        try:
            return await _send_retrying(req)
        except httpx.HTTPError as e:
            raise ApiError("TEMPORARILY_UNAVAILABLE",
                           f"The MLflow tracking server is not reachable yet: {e}", 503,
                           headers={"Retry-After": "1"}) from None

    async def _send_retrying(req: httpx.Request) -> httpx.Response:
        # A configured server may not be up yet: wait for it rather than fail. A read whose
        # body is in hand is sent again when its connection failed under it; anything else
        # only when the connection was refused (it was never sent).
        resend = req.method in ("GET", "HEAD") and isinstance(req.stream, httpx.ByteStream)
        return await retrying(RESENDABLE if resend else httpx.ConnectError, within=REGISTRY_WAIT_S,
                              delay=0.25)(client.send, req, stream=True)

    async def databricks_model(request: Request) -> Response:
        """Databricks' get-model (`w.model_registry.get_model`): the MLflow model, its `id`
        (ladle's id of a registered model is its name) and the caller's level on it."""
        p = principal(request)
        name = request.query_params.get("name") or ""
        if not name:
            raise ApiError("INVALID_PARAMETER_VALUE", "Missing value for required parameter 'name'.")
        acl.require(p, MODEL, name, "CAN_READ")
        model = await lookups.registered_model(name)
        if model is None:
            raise ApiError("RESOURCE_DOES_NOT_EXIST", f"Registered model '{name}' does not exist.")
        level = acl.level(p, MODEL, name)
        return JSONResponse({"registered_model_databricks": {
            **{k: v for k, v in model.items() if k != "aliases"}, "id": name, "permission_level": level}})

    async def otlp_traces(request: Request) -> Response:
        """MLflow's OTLP span intake (`/v1/traces`, the experiment in `x-mlflow-experiment-id`):
        writing spans into an experiment needs CAN_EDIT on it."""
        p = principal(request)
        exp = request.headers.get("x-mlflow-experiment-id") or ""
        if not exp:
            raise ApiError("INVALID_PARAMETER_VALUE", "x-mlflow-experiment-id: the header naming the "
                           "experiment the spans go to is required.")
        if not p.is_admin:
            acl.require(p, EXP, exp, "CAN_EDIT")
        return await _stream(request)

    methods = ["GET", "POST", "PUT", "PATCH", "DELETE"]
    return [Route("/api/2.0/mlflow/databricks/registered-models/get", databricks_model, methods=["GET"]),
            Route("/v1/traces", otlp_traces, methods=["POST"]),
            *(Route(p + "{rest:path}", proxy, methods=methods) for p in PREFIXES)]


def _out_headers(upstream: httpx.Response) -> dict[str, str]:
    return {k: v for k, v in upstream.headers.items()
            if k.lower() not in HOP_HEADERS and k.lower() != "content-encoding"}
