"""OpenAI-compatible routes: `OpenAI(base_url=host + "/serving-endpoints")`
posts to /serving-endpoints/chat/completions, /completions and /embeddings with `model` =
the endpoint name. The body goes, without `model`, through the same gateway pipeline as
/serving-endpoints/{name}/invocations."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ladle.api.bodies import json_object
from ladle.gateway.pipeline import Gateway
from ladle.schemas.errors import invalid

PATHS = ("/serving-endpoints/chat/completions", "/serving-endpoints/completions", "/serving-endpoints/embeddings")


def routes(gw: Gateway) -> list[Route]:
    async def openai(request: Request) -> Response:
        name, data = await read_model_body(request, gw.max_payload)
        return await gw.invoke(request, name, body=orjson.dumps(data))

    return [Route(p, openai, methods=["POST"]) for p in PATHS]


async def read_model_body(request: Request, limit: int) -> tuple[str, dict[str, Any]]:
    """An OpenAI-style body: one JSON object (an empty body counts as `{}`) whose `model` names
    the serving endpoint; that name and the rest of the body."""
    data = json_object(await read_body(request, limit) or b"{}")
    name = data.pop("model", None)
    if not isinstance(name, str) or not name:
        raise invalid("model: is required (the name of the serving endpoint)")
    return name, data


async def read_body(request: Request, limit: int) -> bytes:
    """The body, refused with a 400 once it passes `limit` bytes."""
    chunks, size = [], 0
    async for c in request.stream():
        size += len(c)
        if size > limit:
            raise invalid(f"Request payload exceeds the limit of {limit // (1024 * 1024)} MB.")
        chunks.append(c)
    return b"".join(chunks)
