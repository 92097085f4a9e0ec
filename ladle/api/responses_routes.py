"""The OpenAI Responses API: `OpenAI(base_url=host + "/serving-endpoints").responses.create(
model=EP, input=...)` posts to /serving-endpoints/responses with `model` = the endpoint name.

An endpoint whose model is a `ResponsesAgent` (task `agent/v1/responses`) gets the request
as it came (without `model`); its answer gets the response object's envelope it may leave
out, and its stream the lifecycle events. A chat endpoint (foundation, external, custom chat)
gets the request translated to chat completions (ladle.gateway.responses) and its answer or
chunk stream translated back. Either way it is one request through the gateway pipeline, so
rate limits, guardrails, usage and the inference table apply as for chat."""

from __future__ import annotations

import asyncio
from typing import Any, AsyncIterator, Callable

import orjson
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from ladle.api.openai_routes import read_body, read_model_body
from ladle.gateway import responses as rs
from ladle.gateway import responses_stream as rstream
from ladle.gateway.pipeline import Gateway
from ladle.schemas.errors import invalid
from ladle.schemas.routing import EndpointRoute

PATH = "/serving-endpoints/responses"
AGENT = "agent/v1/responses"
CHAT_TASKS = ("llm/v1/chat", "agent/v1/chat")
SSE = "text/event-stream"
# (model name, version) -> its MLflow metadata task ("" if none; None if its files are not here)
TaskOf = Callable[[str, str], "str | None"]


class ResponsesFront:
    """The Responses API in front of the gateway: its own route, and Responses-shaped bodies
    (`input`, no `messages`) on the invocations routes of chat and agent endpoints."""

    def __init__(self, gw: Gateway, task_of: TaskOf | None = None) -> None:
        self.gw = gw
        self.task_of = task_of
        self.known: dict[tuple[str, str], str | None] = {}

    def routes(self) -> list[Route]:
        return [Route(PATH, self.responses, methods=["POST"])]

    async def model_task(self, route: EndpointRoute) -> str | None:
        """What the endpoint serves: its task, an external model's, or the served MLflow
        model's `metadata.task` (read once per model version, off the event loop)."""
        ext = [e.external_model for e in route.entities.values() if e.external_model]
        if ext:
            return ext[0].get("task")
        if route.task or self.task_of is None:
            return route.task
        first = route.entities.get(route.order[0]) if route.order else None
        if first is None or first.model is None:
            return None
        if first.model not in self.known:
            task = await asyncio.to_thread(self.task_of, *first.model)
            if task is None:
                return None         # not on this machine yet: look again next time
            self.known[first.model] = task or None
        return self.known[first.model]

    async def responses(self, request: Request) -> Response:
        gw = self.gw
        name, data = await read_model_body(request, gw.max_payload)
        route = await gw.authorized_route(request.scope["state"]["principal"], name)
        task = await self.model_task(route)
        if task == AGENT:
            reply = await gw.invoke(request, name, body=orjson.dumps(rs.for_agent(data)))
            return _answer(reply, data, name, agent=True)
        if task is not None and task not in CHAT_TASKS:
            raise invalid(f"model: endpoint '{name}' serves {task}; the Responses API needs a chat "
                          "endpoint or an agent (ResponsesAgent)")
        reply = await gw.invoke(request, name, body=orjson.dumps(rs.to_chat(data)))
        return _answer(reply, data, name, agent=False)

    async def invoke(self, request: Request, name: str, served: str | None = None) -> Response:
        """The invocations routes: a Responses body (`input`, no `messages`) to an endpoint known
        to serve chat is translated as on /serving-endpoints/responses; to an agent, its `input`
        string and `instructions` become items. Everything else goes to the gateway untouched
        (and unread here)."""
        gw = self.gw
        route = gw.routes.get(name)
        task = await self.model_task(route) if route is not None else None
        ctype = (request.headers.get("content-type") or "application/json").split(";")[0].strip().lower()
        if task not in (AGENT, *CHAT_TASKS) or ctype not in ("application/json", "application/x-www-form-urlencoded"):
            return await gw.invoke(request, name, served)
        raw = await read_body(request, gw.max_payload)
        if b'"input"' not in raw:         # the usual chat body: no second parse
            return await gw.invoke(request, name, served, body=raw)
        try:
            data = orjson.loads(raw)
        except orjson.JSONDecodeError:
            data = None
        if not isinstance(data, dict) or "messages" in data or not _responses_input(data.get("input")):
            return await gw.invoke(request, name, served, body=raw)
        if task == AGENT:
            return await gw.invoke(request, name, served, body=orjson.dumps(rs.for_agent(data)))
        reply = await gw.invoke(request, name, served, body=orjson.dumps(rs.to_chat(data)))
        return _answer(reply, data, name, agent=False)


def _responses_input(inp: Any) -> bool:
    """A Responses `input` (a string, or items), not an embeddings one (a list of strings)."""
    return isinstance(inp, str) or (isinstance(inp, list) and any(isinstance(x, dict) for x in inp))


def _answer(reply: Response, req: dict[str, Any], name: str, agent: bool) -> Response:
    if reply.status_code != 200:
        return reply
    headers = {k: v for k, v in reply.headers.items() if k == "served-model-name"}
    if isinstance(reply, StreamingResponse):
        convert = rstream.agent_responses if agent else rstream.chat_to_responses
        return StreamingResponse(convert(reply.body_iterator, req, name), media_type=SSE, headers=headers)
    try:
        answer = orjson.loads(reply.body)
    except orjson.JSONDecodeError:
        return reply
    if agent:
        if not isinstance(answer, dict):
            return reply            # not a Responses answer: as the agent gave it
        resp = {**rs.skeleton(req, name, rs.new_id("resp")), "status": "completed", **answer}
    else:
        resp = rs.from_chat(req, answer, name)
    if req.get("stream") is True:      # asked for a stream, the model answered at once
        return StreamingResponse(_replay(resp, req, name, agent), media_type=SSE, headers=headers)
    return JSONResponse(resp, headers=headers)


async def _replay(resp: dict[str, Any], req: dict[str, Any], name: str, agent: bool) -> AsyncIterator[bytes]:
    """A whole answer as the events of a stream."""
    t = rstream.AgentStream(req, name)
    t.resp = {**resp, "status": "in_progress", "output": []}
    out = b""
    items = resp.get("output") if isinstance(resp.get("output"), list) else []
    for item in (i for i in items if isinstance(i, dict)):
        if item.get("type") == "message" and item.get("id"):
            text = "".join(p.get("text", "") for p in item.get("content") or [] if isinstance(p, dict))
            out += t.event({"type": "response.output_text.delta", "item_id": item["id"], "delta": text})
        out += t.event({"type": "response.output_item.done", "item": item})
    t.resp = resp
    yield out + t.end()
