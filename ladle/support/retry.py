"""The one retry policy of ladle, on tenacity: what to retry, until when, how long to wait.

`retrying(...)` is an `AsyncRetrying`, `retrying_blocking(...)` a `Retrying` for code on a
thread. Either is called with the function and its arguments (`await retrying(...)(fn, x)`)
or iterated (`async for attempt in retrying(...): with attempt: ...`). The last error is
raised as it was when the policy gives up. Cancellation (asyncio.CancelledError, a
BaseException) is never retried.

- `retry_on`: exception types, or a predicate on the exception;
- `attempts` / `within`: give up after that many attempts / seconds (the first to come);
  `give_up`: a predicate checked after each failure (the caller is stopping, say);
- `delay`: the wait between attempts; with `max_delay` it doubles up to that (exponential
  back-off, first wait `delay`);
- `before_sleep(error, seconds)`: told of each failure that will be retried;
- `sleep`: what waits (tests pass one that records instead).
"""

from __future__ import annotations

from typing import Callable

from tenacity import (
    AsyncRetrying, RetryCallState, Retrying, retry_if_exception, stop_after_attempt, stop_after_delay, stop_any,
    stop_never, wait_exponential, wait_fixed,
)

RetryOn = type[BaseException] | tuple[type[BaseException], ...] | Callable[[BaseException], bool]


def _policy(retry_on: RetryOn, attempts: int | None, within: float | None, give_up: Callable[[], bool] | None,
            delay: float, max_delay: float | None,
            before_sleep: Callable[[BaseException, float], None] | None, sleep: Callable | None) -> dict:
    if isinstance(retry_on, (type, tuple)):
        types = retry_on

        def wanted(e: BaseException) -> bool:
            return isinstance(e, types)
    else:
        wanted = retry_on
    stops = [s for s in (stop_after_attempt(attempts) if attempts else None,
                         stop_after_delay(within) if within is not None else None,
                         (lambda _: give_up()) if give_up is not None else None) if s is not None]

    def told(state: RetryCallState) -> None:
        assert before_sleep is not None and state.outcome is not None and state.next_action is not None
        before_sleep(state.outcome.exception(), state.next_action.sleep)

    return dict(
        retry=retry_if_exception(lambda e: isinstance(e, Exception) and wanted(e)),
        stop=stop_any(*stops) if stops else stop_never,
        wait=wait_fixed(delay) if max_delay is None else wait_exponential(multiplier=delay, min=delay, max=max_delay),
        before_sleep=told if before_sleep is not None else None,
        reraise=True,
        **({"sleep": sleep} if sleep is not None else {}),
    )


def retrying(retry_on: RetryOn = Exception, *, attempts: int | None = None, within: float | None = None,
             give_up: Callable[[], bool] | None = None, delay: float = 0.5, max_delay: float | None = None,
             before_sleep: Callable[[BaseException, float], None] | None = None,
             sleep: Callable | None = None) -> AsyncRetrying:
    return AsyncRetrying(**_policy(retry_on, attempts, within, give_up, delay, max_delay, before_sleep, sleep))


def retrying_blocking(retry_on: RetryOn = Exception, *, attempts: int | None = None, within: float | None = None,
                      give_up: Callable[[], bool] | None = None, delay: float = 0.5,
                      max_delay: float | None = None,
                      before_sleep: Callable[[BaseException, float], None] | None = None,
                      sleep: Callable | None = None) -> Retrying:
    return Retrying(**_policy(retry_on, attempts, within, give_up, delay, max_delay, before_sleep, sleep))
