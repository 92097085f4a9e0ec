"""`ladle secrets`: secret scopes and secrets over the Databricks secrets API.

Values are stored encrypted by the server and never shown again; reference them as
{{secrets/<scope>/<key>}} in external model configs and environment_vars.
"""

from __future__ import annotations

import sys
from urllib.parse import urlencode

import click

from ladle.cli.client import from_context
from ladle.cli.options import LadleGroup
from ladle.cli.output import emit_list

BASE = "/api/2.0/secrets"


@click.group("secrets", cls=LadleGroup)
def secrets() -> None:
    """Manage secret scopes and secrets (values encrypted at rest, never returned)."""


@secrets.command("create-scope")
@click.argument("scope")
@click.pass_context
def create_scope(ctx: click.Context, scope: str) -> None:
    """Create a secret scope named SCOPE."""
    from_context(ctx).call("POST", BASE + "/scopes/create", {"scope": scope})


@secrets.command("list-scopes")
@click.pass_context
def list_scopes(ctx: click.Context) -> None:
    """List secret scopes."""
    emit_list((from_context(ctx).call("GET", BASE + "/scopes/list") or {}).get("scopes") or [])


@secrets.command("delete-scope")
@click.argument("scope")
@click.pass_context
def delete_scope(ctx: click.Context, scope: str) -> None:
    """Delete a secret scope and every secret in it."""
    from_context(ctx).call("POST", BASE + "/scopes/delete", {"scope": scope})


@secrets.command("put-secret")
@click.argument("scope")
@click.argument("key")
@click.option("--string-value", help="The value (default: read from standard input; avoid shell history).")
@click.pass_context
def put_secret(ctx: click.Context, scope: str, key: str, string_value: str | None) -> None:
    """Store a secret under SCOPE/KEY (replacing any previous value)."""
    if string_value is None:
        if sys.stdin.isatty():
            string_value = click.prompt("Secret value", hide_input=True)
        else:
            string_value = sys.stdin.read().rstrip("\n")
    from_context(ctx).call("POST", BASE + "/put", {"scope": scope, "key": key, "string_value": string_value})


@secrets.command("list-secrets")
@click.argument("scope")
@click.pass_context
def list_secrets(ctx: click.Context, scope: str) -> None:
    """List the keys of a scope (never their values)."""
    answer = from_context(ctx).call("GET", f"{BASE}/list?{urlencode({'scope': scope})}") or {}
    emit_list(answer.get("secrets") or [])


@secrets.command("delete-secret")
@click.argument("scope")
@click.argument("key")
@click.pass_context
def delete_secret(ctx: click.Context, scope: str, key: str) -> None:
    """Delete the secret SCOPE/KEY."""
    from_context(ctx).call("POST", BASE + "/delete", {"scope": scope, "key": key})
