"""Long-running serving-endpoints commands and the NOT_UPDATING waiter.

After the POST/PUT, unless `--no-wait`, poll `GET /api/2.0/serving-endpoints/{name}` (at once,
then every POLL_INTERVAL_S) until `state.config_update` is NOT_UPDATING (print the endpoint),
UPDATE_FAILED / UPDATE_CANCELED (error), or `--timeout` runs out (error). Progress goes to
stderr: a rich spinner on a terminal, otherwise one plain line per status change.
"""

from __future__ import annotations

import sys
import time
from typing import Any

import click

from ladle.cli.client import ApiClient, from_context, seg
from ladle.cli.options import format_duration, json_option, require_json, wait_options
from ladle.cli.serving_endpoints_help import BodyHelpCommand
from ladle.cli.output import emit_json

BASE = "/api/2.0/serving-endpoints"
POLL_INTERVAL_S = 1.0
TARGET = "NOT_UPDATING"
FAILURES = ("UPDATE_FAILED", "UPDATE_CANCELED")


def stderr_is_tty() -> bool:
    return sys.stderr.isatty()


class _Progress:
    """`current status: <S>` on stderr: a spinner on a TTY, plain lines on change otherwise."""

    def __init__(self) -> None:
        self._last: str | None = None
        self._status: Any = None
        if stderr_is_tty():
            from rich.console import Console

            self._status = Console(stderr=True).status("current status: ...")
            self._status.start()

    def update(self, state: str) -> None:
        message = f"current status: {state or 'UNKNOWN'}"
        if self._status is not None:
            self._status.update(message)
        elif state != self._last:
            click.echo(message, err=True)
        self._last = state

    def close(self) -> None:
        if self._status is not None:
            self._status.stop()


def wait_not_updating(client: ApiClient, name: str, timeout_s: float) -> dict[str, Any]:
    """Poll the endpoint until its config update settles; return the final endpoint."""
    deadline = time.monotonic() + timeout_s
    progress = _Progress()
    try:
        while True:
            endpoint = client.call("GET", f"{BASE}/{seg(name)}") or {}
            state = str((endpoint.get("state") or {}).get("config_update") or "")
            progress.update(state)
            if state == TARGET:
                return endpoint
            if state in FAILURES:
                raise click.ClickException(f"failed to reach {TARGET}, got {state}: current status: {state}")
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise click.ClickException(
                    f"timed out after {format_duration(timeout_s)}: current status: {state or 'UNKNOWN'}"
                )
            time.sleep(min(POLL_INTERVAL_S, remaining))
    finally:
        progress.close()


def _run(
    ctx: click.Context, method: str, path: str, body: dict[str, Any], name: str | None, no_wait: bool, timeout: float
) -> None:
    client = from_context(ctx)
    answer = client.call(method, path, body) or {}
    if no_wait:
        emit_json(answer)
        return
    name = answer.get("name") or name
    if not name:
        raise click.ClickException("the server's answer has no endpoint name to wait for; use --no-wait")
    emit_json(wait_not_updating(client, name, timeout))


def _merge(body: dict[str, Any], **flags: Any) -> dict[str, Any]:
    """Flags given on the command line override the same fields of --json."""
    for key, value in flags.items():
        if value is not None and value is not False:
            body[key] = value
    return body


@click.command("create", cls=BodyHelpCommand)
@click.argument("name", required=False)
@json_option
@wait_options
@click.option("--budget-policy-id", help="The budget policy to be applied to the serving endpoint.")
@click.option("--description", help="The description of the serving endpoint.")
@click.option("--route-optimized", is_flag=True, default=False, help="Enable route optimization for the endpoint.")
@click.pass_context
def create(
    ctx: click.Context,
    name: str | None,
    json_body: dict[str, Any] | None,
    no_wait: bool,
    timeout: float,
    budget_policy_id: str | None,
    description: str | None,
    route_optimized: bool,
) -> None:
    """Create a new serving endpoint.

    NAME is the name of the serving endpoint. This field is required and must be unique
    across the workspace. An endpoint name can consist of alphanumeric characters, dashes,
    and underscores. NAME may be left out when --json provides `name`.

    Waits until the endpoint's config update is done (state NOT_UPDATING) unless --no-wait.
    """
    body = dict(json_body or {})
    if name:
        body["name"] = name
    elif json_body is None:
        raise click.UsageError("Missing argument 'NAME'.")
    elif not body.get("name"):
        raise click.UsageError("when NAME is not given, provide 'name' in your --json input")
    _merge(body, budget_policy_id=budget_policy_id, description=description, route_optimized=route_optimized)
    _run(ctx, "POST", BASE, body, body["name"], no_wait, timeout)


@click.command("create-provisioned-throughput-endpoint", cls=BodyHelpCommand)
@json_option
@wait_options
@click.option("--budget-policy-id", help="The budget policy associated with the endpoint.")
@click.pass_context
def create_provisioned_throughput_endpoint(
    ctx: click.Context, json_body: dict[str, Any] | None, no_wait: bool, timeout: float, budget_policy_id: str | None
) -> None:
    """Create a new PT serving endpoint.

    Create a new provisioned throughput serving endpoint. --json is required and must
    contain `name` and `config`.

    Waits until the endpoint's config update is done (state NOT_UPDATING) unless --no-wait.
    """
    body = _merge(require_json(json_body), budget_policy_id=budget_policy_id)
    _run(ctx, "POST", f"{BASE}/pt", body, body.get("name"), no_wait, timeout)


@click.command("update-config", cls=BodyHelpCommand)
@click.argument("name")
@json_option
@wait_options
@click.pass_context
def update_config(
    ctx: click.Context, name: str, json_body: dict[str, Any] | None, no_wait: bool, timeout: float
) -> None:
    """Update config of a serving endpoint.

    Updates any combination of the serving endpoint's served entities, the compute
    configuration of those served entities, and the endpoint's traffic config. An endpoint
    that already has an update in progress can not be updated until the current update
    completes or fails.

    NAME is the name of the serving endpoint to update.

    Waits until the endpoint's config update is done (state NOT_UPDATING) unless --no-wait.
    """
    body = dict(json_body or {})
    _run(ctx, "PUT", f"{BASE}/{seg(name)}/config", body, name, no_wait, timeout)


@click.command("update-provisioned-throughput-endpoint-config", cls=BodyHelpCommand)
@click.argument("name")
@json_option
@wait_options
@click.pass_context
def update_provisioned_throughput_endpoint_config(
    ctx: click.Context, name: str, json_body: dict[str, Any] | None, no_wait: bool, timeout: float
) -> None:
    """Update config of a PT serving endpoint.

    Updates any combination of the PT endpoint's served entities, the compute configuration
    of those served entities, and the endpoint's traffic config. --json is required and must
    contain `config`.

    NAME is the name of the PT serving endpoint to update.

    Waits until the endpoint's config update is done (state NOT_UPDATING) unless --no-wait.
    """
    body = require_json(json_body)
    _run(ctx, "PUT", f"{BASE}/pt/{seg(name)}/config", body, name, no_wait, timeout)
