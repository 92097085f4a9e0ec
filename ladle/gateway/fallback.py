"""Fallbacks (AI Gateway `fallback_config.enabled`): a served entity that answers 429 or 5xx
is retried on the next served entity in config order, wrapping around, at most
`MAX_FALLBACKS` times (Databricks' limit). Entities with 0% traffic are fallback-only. The
last failure is returned when every attempt fails."""

from __future__ import annotations

from typing import Awaitable, Callable

from ladle.runtimes.base import Reply
from ladle.schemas.errors import ApiError
from ladle.schemas.routing import EndpointRoute, EntityRoute

MAX_FALLBACKS = 2


def candidates(route: EndpointRoute, first: EntityRoute, enabled: bool) -> list[EntityRoute]:
    if not enabled or len(route.order) < 2:
        return [first]
    i = route.order.index(first.name) if first.name in route.order else -1
    rest = [route.order[(i + k) % len(route.order)] for k in range(1, len(route.order))]
    return [first] + [route.entities[n] for n in rest[:MAX_FALLBACKS]]


def retriable(status: int) -> bool:
    return status == 429 or status >= 500


async def _discard(reply: Reply) -> None:
    try:
        async for _ in reply.chunks:
            pass
    except Exception:
        pass


async def first_good(entities: list[EntityRoute],
                     call: Callable[[EntityRoute], Awaitable[Reply]]) -> tuple[Reply, EntityRoute]:
    """Call entities in turn until one answers neither 429 nor 5xx."""
    last = len(entities) - 1
    for i, entity in enumerate(entities):
        try:
            reply = await call(entity)
        except ApiError as e:
            if i == last or not retriable(e.status):
                e.headers.setdefault("served-model-name", entity.name)
                raise
            continue
        if i == last or not retriable(reply.status):
            return reply, entity
        await _discard(reply)
    raise AssertionError("unreachable")
