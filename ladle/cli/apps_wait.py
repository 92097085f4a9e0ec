"""Waiting for an app or a deployment to settle, the way databricks-sdk's `w.apps` waiters do.

`create` and `start` wait for `compute_status.state` ACTIVE (ERROR / STOPPED fail), `stop`
for STOPPED (ERROR fails), `deploy` for the deployment's `status.state` SUCCEEDED (FAILED /
CANCELLED fail). Progress (the status message) goes to stderr: a spinner on a terminal,
otherwise one line per change. A failed deployment points at `ladle apps logs`, like the
Databricks CLI.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from typing import Any, Callable

import click

from ladle.cli.client import ApiClient, seg
from ladle.cli.options import format_duration

BASE = "/api/2.0/apps"
POLL_INTERVAL_S = 1.0
LOGS_HINT_LINES = 100


@dataclass(frozen=True)
class Target:
    """What to poll and which states end the wait."""
    path: str
    status_key: str  # "compute_status" for apps, "status" for deployments
    target: str
    failures: tuple[str, ...]


def app_target(name: str, target: str) -> Target:
    failures = ("ERROR", "STOPPED") if target == "ACTIVE" else ("ERROR",)
    return Target(f"{BASE}/{seg(name)}", "compute_status", target, failures)


def deployment_target(name: str, deployment_id: str) -> Target:
    return Target(f"{BASE}/{seg(name)}/deployments/{seg(deployment_id)}", "status", "SUCCEEDED",
                  ("FAILED", "CANCELLED"))


class _Progress:
    def __init__(self) -> None:
        self._last: str | None = None
        self._status: Any = None
        if sys.stderr.isatty():
            from rich.console import Console

            self._status = Console(stderr=True).status("current status: ...")
            self._status.start()

    def update(self, message: str) -> None:
        if self._status is not None:
            self._status.update(message)
        elif message != self._last:
            click.echo(message, err=True)
        self._last = message

    def close(self) -> None:
        if self._status is not None:
            self._status.stop()


def wait_for(client: ApiClient, target: Target, timeout_s: float,
             sleep: Callable[[float], None] = time.sleep) -> dict[str, Any]:
    """Poll until the target state; return the last object. Raises ClickException on a failure
    state or when `timeout_s` runs out."""
    deadline = time.monotonic() + timeout_s
    progress = _Progress()
    try:
        while True:
            obj = client.call("GET", target.path) or {}
            status = obj.get(target.status_key) or {}
            state = str(status.get("state") or "")
            message = str(status.get("message") or "")
            progress.update(message or f"current status: {state or 'UNKNOWN'}")
            if state == target.target:
                return obj
            if state in target.failures:
                raise click.ClickException(f"failed to reach {target.target}, got {state}: {message}")
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise click.ClickException(f"timed out after {format_duration(timeout_s)}: "
                                           f"current status: {state or 'UNKNOWN'}: {message}")
            sleep(min(POLL_INTERVAL_S, remaining))
    finally:
        progress.close()


def with_logs_hint(name: str, profile: str | None, exc: click.ClickException) -> click.ClickException:
    """The Databricks CLI's hint after a failed deployment wait."""
    hint = f"\n\nTo view app logs, run:\n  ladle apps logs {name} --tail-lines {LOGS_HINT_LINES}"
    if profile:
        hint += f" --profile {profile}"
    return click.ClickException(exc.message + hint)
