"""Draining waits on the in-flight count reaching zero (an event), not on a polling loop."""

from __future__ import annotations

import asyncio

from ladle.runtimes.base import InFlight, drain_all


def test_drained_returns_when_the_last_request_leaves():
    async def run() -> tuple[bool, bool, float]:
        a, b = InFlight(), InFlight()
        a.enter(), a.enter(), b.enter()
        loop = asyncio.get_running_loop()
        assert not await a.drained(0.01)            # busy: times out
        loop.call_soon(a.leave)
        loop.call_soon(b.leave)
        loop.call_soon(a.leave)
        t0 = loop.time()
        done = await drain_all([a, b], 5.0)
        return done, a.count == b.count == 0, loop.time() - t0

    done, zero, took = asyncio.run(run())
    assert done and zero and took < 1.0


def test_idle_from_the_start():
    assert asyncio.run(InFlight().drained(0.0))
