"""The request path, in one place. The steps, in order:

    authorize (CAN_QUERY) -> read body -> rate limit -> guardrails(in) -> route (traffic %,
    or the served-model path) -> replica (with fallbacks) -> guardrails(out)
    -> usage + payload log (async) and token accounting, metrics

(Authentication runs before, in AuthMiddleware.) Holds only the read-only routing view the
control plane publishes, with each endpoint's AI Gateway config compiled into a policy, and
the names of the endpoints that exist but serve nothing yet; no store reads per request (a
database that is slow or away never delays a request to a known endpoint; only a name this
server was not told of is looked up, through `on_miss`, on a shared database). Endpoints without an AI Gateway
config take the short path.
"""

from __future__ import annotations

import logging
import os
import time
from contextlib import nullcontext
from typing import Any, AsyncIterator, Awaitable, Callable, Mapping

import orjson
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from ladle.gateway import fallback, guardrails, ratelimit, streams
from ladle.gateway.external import ExternalCaller
from ladle.gateway.guardrails import GuardrailBlocked
from ladle.gateway.policy import GatewayPolicy, compile_policy
from ladle.gateway.pool import ReplicaPool
from ladle.gateway.ratelimit import MemoryLimiter, RateLimited, RateLimiter
from ladle.runtimes.base import Reply
from ladle.schemas import llm
from ladle.schemas.errors import ApiError, endpoint_denied, not_found
from ladle.schemas.principal import Principal, at_least
from ladle.schemas.routing import EndpointRoute, EntityRoute
from ladle.telemetry import otel as ot
from ladle.telemetry.metrics import EndpointMetrics, MetricsHub
from ladle.telemetry.recorder import Exchange, Recorder

LevelOf = Callable[[Principal, str], str | None]
SSE = "text/event-stream"
MAX_TAPPED_BYTES = 8 * 1024 * 1024


log = logging.getLogger("ladle.gateway")
MISS_RETRY_S = 0.5   # how often a not-ready endpoint is looked up again on a shared database


class Gateway:
    def __init__(self, pool: ReplicaPool, metrics: MetricsHub, level_of: LevelOf,
                 max_payload_bytes: int,
                 limiter: RateLimiter | None = None, recorder: Recorder | None = None,
                 external: ExternalCaller | None = None,
                 on_miss: Callable[[str], Awaitable[None]] | None = None,
                 otel: ot.Otel | None = None) -> None:
        self.pool = pool
        self.otel = otel            # OpenTelemetry export; None: never traced
        # A name this server has not been told of: another server on the shared database may
        # have made it since the last sync. `on_miss` looks it up off the event loop and
        # republishes, so an endpoint READY in the store is never a 404 here.
        self.on_miss = on_miss
        self.external = external
        self.metrics = metrics
        self.level_of = level_of
        self.max_payload = max_payload_bytes
        self.limiter: RateLimiter = limiter or MemoryLimiter()
        self.recorder = recorder
        self.routes: dict[str, EndpointRoute] = {}
        self.policies: dict[str, GatewayPolicy] = {}
        self.not_ready: Mapping[str, tuple[str, tuple[str, ...]]] = {}
        self._looked: dict[str, float] = {}   # not-ready name -> when it was last looked up

    def publish(self, routes: dict[str, EndpointRoute],
                not_ready: Mapping[str, tuple[str, tuple[str, ...]]] | None = None) -> None:
        """`routes`: the endpoints that serve; `not_ready`: those that exist and serve nothing yet
        (name -> its id and its served entities' names)."""
        not_ready = not_ready or {}
        policies = {n: compile_policy(r) for n, r in routes.items()}
        # swapped together, with no await between: a request sees the old view or the new one
        self.routes, self.policies, self.not_ready = routes, policies, not_ready
        self._looked = {k: t for k, t in self._looked.items() if k in not_ready}
        if self.otel is not None:
            self.otel.follow_logs(routes)                  # replica logs over OTLP, if asked
        self.metrics.retain({r.id for r in routes.values()})   # deleted endpoints' metrics go

    def _route(self, p: Principal, name: str) -> EndpointRoute:
        route = self.routes.get(name)
        if route is None:
            if name in self.not_ready and self.level_of(p, self.not_ready[name][0]) is not None:
                entities = self.not_ready[name][1]
                served = entities[0] if len(entities) == 1 else "<SERVED_MODEL>"
                raise ApiError("RESOURCE_DOES_NOT_EXIST",
                               f"Endpoint '{name}' is not ready: it may still be provisioning. Poll "
                               f"`serving-endpoints get {name}` until state.ready is READY; if it stays "
                               f"NOT_READY, read `serving-endpoints build-logs {name} {served}` (served "
                               f"models: {', '.join(entities) or 'none'}).")
            raise not_found(name)
        lvl = self.level_of(p, route.id)
        # No level at all is PERMISSION_DENIED too, as Databricks answers a query: its message
        # says how to get CAN_QUERY (for an app: declare the `serving_endpoint` resource).
        if not at_least(lvl, "CAN_QUERY"):
            raise endpoint_denied(p.name, p.kind, "CAN_QUERY", name, lvl)
        return route

    async def authorized_route(self, p: Principal, name: str) -> EndpointRoute:
        """The route of an endpoint `p` may query (404/403 as `invoke` answers them), for
        routes that shape the request by what the endpoint serves."""
        await self._look_again(name)
        return self._route(p, name)

    async def _look_again(self, name: str) -> None:
        """With `on_miss` (a shared database): a name this server does not serve may have been
        made, or become ready, on another server since the last sync, so it is looked up before
        the 404; a name known as not ready at most every MISS_RETRY_S (a provisioning
        endpoint's callers cost no store read each)."""
        if self.on_miss is None or name in self.routes:
            return
        if name in self.not_ready:
            now = time.monotonic()
            if now - self._looked.get(name, float("-inf")) < MISS_RETRY_S:
                return
            self._looked[name] = now
        await self.on_miss(name)

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

    async def invoke(self, request: Request, name: str, served: str | None = None,
                     body: bytes | None = None) -> Response:
        """`body`: already read by the caller (the OpenAI-compatible routes read it to find
        the endpoint name in `model`)."""
        t0 = time.perf_counter()
        p: Principal = request.scope["state"]["principal"]
        await self._look_again(name)
        route = self._route(p, name)                                            # authorize
        fixed = None
        if served is not None:
            fixed = route.entities.get(served)
            if fixed is None:
                raise ApiError("RESOURCE_DOES_NOT_EXIST",
                               f"Served model '{served}' does not exist in endpoint '{name}'.")
        pol = self.policies.get(name) or compile_policy(route)
        m = self.metrics.for_endpoint(route.id)
        ex = Exchange(request_id(), name, route.id, p.name)
        if self.otel is not None and self.otel.wants(route.telemetry, route.experiment_id):
            attrs = {"ladle.endpoint": name, "ladle.request_id": ex.request_id,
                     "http.request.method": request.method}
            if route.experiment_id:                     # an MLflow trace too (telemetry/otel.py)
                attrs[ot.EXPERIMENT] = route.experiment_id
            ex.span = ot.start_request(self.otel, request.headers, f"{request.method} {request.url.path}",
                                       attrs)
        label = fixed.name if fixed else ""
        needs: list[ratelimit.Need] = []
        req: Any = None
        try:
            if body is None:
                body = await self._body(request)                                # read
            ex.request = body
            ctype = _content_type(request.headers.get("content-type"))
            if not pol.limits.empty:                                            # rate limit
                with self._step(ex, "rate_limit"):
                    needs = await ratelimit.admit(self.limiter, pol.limits, p, name)
            if pol.parse_request and ctype.startswith("application/json"):
                req = _loads(body)
                ex.read_request_ids(req)
                ex.input_chars = sum(len(t) for t in guardrails.texts(req, pol.llm))
                if pol.inp.active and req is not None:                          # guardrails(in)
                    with self._step(ex, "guardrails.input"):
                        guarded = guardrails.guard_request(pol.inp, req, pol.llm)
                    if guarded is not req:
                        body = ex.request = orjson.dumps(guarded)   # logged as the model got it
            ex.streaming = isinstance(req, dict) and req.get("stream") is True
            first = fixed or route.pick()                                       # route
            label = first.name
            t_exec = time.perf_counter()
            reply, entity = await fallback.first_good(                          # replica
                fallback.candidates(route, first, pol.fallback and fixed is None),
                lambda e: self._call_entity(route, e, ctype, body, ex))
            label, ex.entity_name, ex.entity_key = entity.name, entity.name, entity.key
            return await self._respond(pol, ex, req, reply, entity, m, t0, t_exec, needs)
        except ApiError as e:
            if isinstance(e, RateLimited):
                m.rate_limited.labels(label).inc()
            elif isinstance(e, GuardrailBlocked):
                m.guardrail_blocked.labels(label).inc()
            if label:
                e.headers.setdefault("served-model-name", label)
            err = e.body(ex.request_id)
            out = orjson.dumps(err)
            ex.response, ex.response_obj = out, None
            await self._finish(pol, ex, e.status, m, label, t0, needs)
            return JSONResponse(err, status_code=e.status, headers=e.headers)

    def _step(self, ex: Exchange, name: str, **attrs: Any) -> Any:
        """A child span of the request span; nothing when the request is not traced."""
        if ex.span is None or self.otel is None:
            return nullcontext()
        exp = (getattr(ex.span, "attributes", None) or {}).get(ot.EXPERIMENT)
        if exp:
            attrs[ot.EXPERIMENT] = exp
        return ot.child(self.otel, ex.span, name, **attrs)

    def _metered(self, name: str) -> bool:
        route = self.routes.get(name)
        return self.otel is not None and route is not None and self.otel.wants_metrics(route.telemetry)

    async def _call_entity(self, route: EndpointRoute, entity: EntityRoute, ctype: str,
                           body: bytes, ex: Exchange | None = None) -> Reply:
        """Send the request to one served entity (the step fallbacks repeat)."""
        if ex is not None and ex.span is not None:
            kind = "external" if entity.external_model is not None else "replica"
            with self._step(ex, kind, **{"ladle.served_entity": entity.name}):
                reply = await self._send(route, entity, ctype, body, ot.outgoing())
            ex.model_spans = reply.spans       # the model's own spans, filled as they come
            return reply
        return await self._send(route, entity, ctype, body, None)

    async def _send(self, route: EndpointRoute, entity: EntityRoute, ctype: str, body: bytes,
                    trace: dict[str, str] | None) -> Reply:
        if entity.external_model is not None:
            if self.external is None:
                raise ApiError("NOT_IMPLEMENTED", f"Served entity '{entity.name}' is an external model; "
                               "this gateway has no external model caller.", 501)
            return await self.external.call(entity.name, entity.external_model, body, headers=trace)
        if route.task in llm.TASKS and ctype.startswith("application/json"):
            llm.check_request(route.task, llm.parse_body(body))                 # 400 before model work
        meta = {"content_type": ctype, "path": "invocations"}
        if trace:
            meta["traceparent"] = trace.get("traceparent", "")
        return await self.pool.call(entity.key, entity.name, meta, body)

    async def _respond(self, pol: GatewayPolicy, ex: Exchange, req: Any, reply: Reply,
                       entity: EntityRoute, m: EndpointMetrics, t0: float, t_exec: float,
                       needs: list[ratelimit.Need]) -> Response:
        headers = {"served-model-name": entity.name}
        ok = reply.status == 200
        if reply.content_type.startswith(SSE):
            ex.streaming = True
            if ok and pol.out.blocks:
                # a refusal cannot be taken back once chunks have gone: check the whole answer
                raw = await reply.read()
                ex.execution_ms = _ms_since(t_exec)
                answer = streams.assemble(streams.stream_payloads(raw))
                self._account(pol, ex, answer)
                with self._step(ex, "guardrails.output"):
                    guardrails.guard_response(pol.out, answer, req, pol.llm)
                chunks = _once(raw)
            else:
                chunks = reply.chunks
            if ok and pol.out.pii == "MASK":
                chunks = streams.masked(chunks)
            return StreamingResponse(self._tap(pol, ex, chunks, reply.status, m, t0, t_exec, needs),
                                     status_code=reply.status, media_type=reply.content_type,
                                     headers=headers)
        out = await reply.read()
        ex.execution_ms = _ms_since(t_exec)
        if ok and pol.parse_response and reply.content_type.startswith("application/json"):
            answer = _loads(out)
            self._account(pol, ex, answer)
            if pol.out.active and answer is not None:
                with self._step(ex, "guardrails.output"):
                    guarded = guardrails.guard_response(pol.out, answer, req, pol.llm)
                if guarded is not answer:
                    out = orjson.dumps(guarded)
        ex.response = out
        await self._finish(pol, ex, reply.status, m, entity.name, t0, needs)
        return Response(out, status_code=reply.status, media_type=reply.content_type, headers=headers)

    async def _tap(self, pol: GatewayPolicy, ex: Exchange, chunks: AsyncIterator[bytes], status: int,
                   m: EndpointMetrics, t0: float, t_exec: float,
                   needs: list[ratelimit.Need]) -> AsyncIterator[bytes]:
        """Pass a stream through; at its end, account for it and log it assembled."""
        keep = pol.records or pol.parse_response
        seen: list[bytes] = []
        size = 0
        try:
            async for c in chunks:
                if keep and size < MAX_TAPPED_BYTES:
                    seen.append(c)
                size += len(c)
                yield c
        finally:
            if not ex.execution_ms:
                ex.execution_ms = _ms_since(t_exec)
            if keep:
                raw = b"".join(seen)
                ex.response = raw
                if status == 200:
                    ex.response_obj = streams.assemble(streams.stream_payloads(raw))
                    if not (ex.input_tokens or ex.output_tokens):
                        self._account(pol, ex, ex.response_obj)
            await self._finish(pol, ex, status, m, ex.entity_name or "", t0, needs)

    def _account(self, pol: GatewayPolicy, ex: Exchange, answer: Any) -> None:
        """Token and character counts of an answer."""
        if answer is None:
            return
        ex.output_chars = sum(len(t) for t in guardrails.texts(answer, pol.llm, response=True))
        tokens = streams.usage_tokens(answer)
        if tokens is None and pol.llm:
            tokens = ((ex.input_chars + 1) // 4, (ex.output_chars + 1) // 4)
        if tokens is not None:
            ex.input_tokens, ex.output_tokens = tokens

    async def _finish(self, pol: GatewayPolicy, ex: Exchange, status: int, m: EndpointMetrics,
                      entity: str, t0: float, needs: list[ratelimit.Need]) -> None:
        """The end of every request that got past authorization: tokens, metrics, tables."""
        ex.status = status
        spent = ex.input_tokens + ex.output_tokens
        if spent and needs:
            buckets = ratelimit.token_buckets(needs)
            if buckets:
                try:
                    await self.limiter.charge(buckets, spent)
                except Exception:   # the answer is given: a counter store that is away
                    log.warning("could not count %d tokens against the rate limits", spent, exc_info=True)
        ms = (time.perf_counter() - t0) * 1000
        m.observe(entity, status, ms)
        if ex.span is not None:
            if ex.model_spans and self.otel is not None:
                self.otel.export_spans(ex.model_spans, ex.span)
            ot.end_request(ex.span, status, {"ladle.served_entity": entity or None,
                                             "gen_ai.usage.input_tokens": ex.input_tokens or None,
                                             "gen_ai.usage.output_tokens": ex.output_tokens or None})
        if self.otel is not None and self._metered(ex.endpoint_name):
            self.otel.observe(ex.endpoint_name, entity, status, ms)
        if pol.records and self.recorder is not None:
            self.recorder.record(ex, pol.usage, pol.payload)


def request_id() -> str:
    """A random (version 4) UUID as text, as str(uuid.uuid4()) gives it, at a third of its cost
    (it is made for every request)."""
    b = bytearray(os.urandom(16))
    b[6], b[8] = (b[6] & 0x0F) | 0x40, (b[8] & 0x3F) | 0x80
    h = b.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


async def _once(raw: bytes) -> AsyncIterator[bytes]:
    yield raw


def _loads(body: bytes) -> Any:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        return None


def _ms_since(t: float) -> int:
    return int((time.perf_counter() - t) * 1000)


SCORING_TYPES = ("application/json", "text/csv", "application/vnd.apache.parquet")


def _content_type(given: str | None) -> str:
    """Databricks reads bodies as JSON unless told CSV or Parquet (curl -d sends a form type)."""
    if given and given.split(";")[0].strip().lower() in SCORING_TYPES:
        return given
    return "application/json"


def _too_large(limit: int) -> ApiError:
    return ApiError("INVALID_PARAMETER_VALUE",
                    f"Request payload exceeds the limit of {limit // (1024 * 1024)} MB.", 400)
