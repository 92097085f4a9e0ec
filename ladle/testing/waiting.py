"""Waiting on a condition instead of sleeping a fixed time: poll `pred` until it returns
something truthy (and return that), or fail naming what did not happen.

Hand-written (a dozen lines) rather than a retry library: tests need the predicate's value
back and an AssertionError that names the condition, not a retry policy."""

from __future__ import annotations

import asyncio
import time
from typing import Callable, TypeVar

T = TypeVar("T")


def wait_until(pred: Callable[[], T], timeout: float = 10.0, interval: float = 0.05,
               what: str = "condition") -> T:
    deadline = time.monotonic() + timeout
    while not (value := _poll(pred, deadline, timeout, what)):
        time.sleep(interval)
    return value


async def wait_until_async(pred: Callable[[], T], timeout: float = 10.0, interval: float = 0.01,
                           what: str = "condition") -> T:
    """The same inside an event loop: the loop keeps running between polls."""
    deadline = time.monotonic() + timeout
    while not (value := _poll(pred, deadline, timeout, what)):
        await asyncio.sleep(interval)
    return value


def _poll(pred: Callable[[], T], deadline: float, timeout: float, what: str) -> T:
    """One poll: `pred()`'s value; past the deadline a falsy one fails naming `what`."""
    value = pred()
    if not value and time.monotonic() > deadline:
        raise AssertionError(f"timed out after {timeout}s waiting for {what}")
    return value


def wait_quiet(read: Callable[[], T], quiet_s: float = 0.5, timeout: float = 10.0,
               interval: float = 0.1, what: str = "a value to stop changing") -> T:
    """Wait until `read()` has kept the same value for `quiet_s` (something stopped: a
    generator that was cancelled, a file no longer written to); return that value."""
    deadline = time.monotonic() + timeout
    last, since = read(), time.monotonic()
    while True:
        time.sleep(interval)
        now = read()
        if now != last:
            last, since = now, time.monotonic()
        elif time.monotonic() - since >= quiet_s:
            return now
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
