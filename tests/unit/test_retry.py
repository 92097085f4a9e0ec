"""ladle.support.retry: the one retry policy (on tenacity) the runtimes, the registry client
and the MLflow proxy use."""

from __future__ import annotations

import asyncio

import pytest

from ladle.support.retry import retrying, retrying_blocking


class Flaky:
    def __init__(self, failures: int, error: BaseException) -> None:
        self.failures, self.error, self.calls = failures, error, 0

    async def __call__(self) -> str:
        self.calls += 1
        if self.calls <= self.failures:
            raise self.error
        return "ok"


def _recorder(waits: list[float]):
    async def sleep(s: float) -> None:
        waits.append(s)
    return sleep


def test_retries_the_named_error_with_exponential_backoff_capped():
    waits: list[float] = []
    told: list[tuple[str, float]] = []
    fn = Flaky(7, ConnectionError("refused"))
    out = asyncio.run(retrying(ConnectionError, delay=0.5, max_delay=4.0, sleep=_recorder(waits),
                               before_sleep=lambda e, s: told.append((str(e), s)))(fn))
    assert out == "ok" and fn.calls == 8
    assert waits == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0, 4.0]
    assert told[0] == ("refused", 0.5)


def test_gives_up_after_the_attempts_with_the_last_error():
    waits: list[float] = []
    fn = Flaky(10, ConnectionError("refused"))
    with pytest.raises(ConnectionError, match="refused"):
        asyncio.run(retrying(ConnectionError, attempts=3, delay=0.25, sleep=_recorder(waits))(fn))
    assert fn.calls == 3 and waits == [0.25, 0.25]


def test_other_errors_and_predicates_that_say_no_are_raised_at_once():
    fn = Flaky(1, ValueError("bad"))
    with pytest.raises(ValueError):
        asyncio.run(retrying(ConnectionError, sleep=_recorder([]))(fn))
    fn = Flaky(1, ValueError("bad"))
    with pytest.raises(ValueError):
        asyncio.run(retrying(lambda e: "taken" in str(e), sleep=_recorder([]))(fn))
    assert fn.calls == 1


def test_cancellation_is_never_retried():
    fn = Flaky(5, asyncio.CancelledError())
    with pytest.raises(asyncio.CancelledError):
        asyncio.run(retrying(BaseException, sleep=_recorder([]))(fn))
    assert fn.calls == 1


def test_give_up_stops_retrying():
    stopping = []
    fn = Flaky(10, ConnectionError("refused"))

    async def sleep(_: float) -> None:
        stopping.append(True)

    with pytest.raises(ConnectionError):
        asyncio.run(retrying(give_up=lambda: len(stopping) >= 2, sleep=sleep)(fn))
    assert fn.calls == 3


def test_blocking_variant():
    calls = []

    def fn() -> int:
        calls.append(1)
        if len(calls) < 3:
            raise ValueError("name already taken")
        return len(calls)

    waits: list[float] = []
    assert retrying_blocking(lambda e: "already taken" in str(e), attempts=5, sleep=waits.append)(fn) == 3
    assert waits == [0.5, 0.5]
