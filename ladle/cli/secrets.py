"""`ladle secrets`: secret scopes and secrets over the Databricks secrets API.

Values are stored encrypted by the server and never shown again; reference them as
{{secrets/<scope>/<key>}} in external model configs and environment_vars. Secret ACLs
(READ < WRITE < MANAGE per scope) take the Databricks CLI's arguments:
`put-acl SCOPE PRINCIPAL PERMISSION`, `get-acl SCOPE PRINCIPAL`, `list-acls SCOPE`,
`delete-acl SCOPE PRINCIPAL` (put-acl and delete-acl also take `--json`).
"""

from __future__ import annotations

import sys
from typing import Any
from urllib.parse import urlencode

import click

from ladle.cli.client import from_context
from ladle.cli.options import LadleGroup, json_option
from ladle.cli.output import emit_json, emit_list

BASE = "/api/2.0/secrets"


@click.group("secrets", cls=LadleGroup)
def secrets() -> None:
    """Manage secret scopes, secrets and secret ACLs (values encrypted at rest, never returned)."""


@secrets.command("create-scope")
@click.argument("scope")
@click.option("--initial-manage-principal",
              help="The principal that is initially granted MANAGE permission to the created scope "
                   "(only `users`; default: you).")
@click.pass_context
def create_scope(ctx: click.Context, scope: str, initial_manage_principal: str | None) -> None:
    """Create a secret scope named SCOPE; you hold MANAGE on it."""
    body = {"scope": scope}
    if initial_manage_principal is not None:
        body["initial_manage_principal"] = initial_manage_principal
    from_context(ctx).call("POST", BASE + "/scopes/create", body)


@secrets.command("list-scopes")
@click.pass_context
def list_scopes(ctx: click.Context) -> None:
    """List the secret scopes you hold a permission on (admins: all)."""
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


def _args_or_json(names: tuple[str, ...], args: tuple[str, ...], json_body: dict[str, Any] | None) -> dict[str, Any]:
    """Positional arguments, or (like the Databricks CLI) a --json body and none of them."""
    if json_body is not None:
        if any(args):
            raise click.UsageError("when --json flag is specified, no positional arguments are required. "
                                   f"Provide {', '.join(repr(n) for n in names)} in your JSON input")
        return dict(json_body)
    if not all(args):
        missing = [n.upper() for n, a in zip(names, args) if not a]
        raise click.UsageError(f"Missing argument(s): {' '.join(missing)}")
    return dict(zip(names, args))


@secrets.command("put-acl")
@click.argument("scope", required=False)
@click.argument("principal", required=False)
@click.argument("permission", required=False)
@json_option
@click.pass_context
def put_acl(ctx: click.Context, scope: str | None, principal: str | None, permission: str | None,
            json_body: dict[str, Any] | None) -> None:
    """Create/update an ACL.

    Gives PRINCIPAL (a user, service principal or group name) PERMISSION (READ, WRITE or
    MANAGE) on SCOPE, replacing what it had. You need MANAGE on the scope.
    """
    body = _args_or_json(("scope", "principal", "permission"), (scope, principal, permission), json_body)
    from_context(ctx).call("POST", BASE + "/acls/put", body)


@secrets.command("get-acl")
@click.argument("scope")
@click.argument("principal")
@click.pass_context
def get_acl(ctx: click.Context, scope: str, principal: str) -> None:
    """Get secret ACL details.

    PRINCIPAL's permission on SCOPE. You need MANAGE on the scope.
    """
    query = urlencode({"scope": scope, "principal": principal})
    emit_json(from_context(ctx).call("GET", f"{BASE}/acls/get?{query}"))


@secrets.command("list-acls")
@click.argument("scope")
@click.pass_context
def list_acls(ctx: click.Context, scope: str) -> None:
    """Lists ACLs.

    Every principal's permission on SCOPE. You need MANAGE on the scope.
    """
    answer = from_context(ctx).call("GET", f"{BASE}/acls/list?{urlencode({'scope': scope})}") or {}
    emit_list(answer.get("items") or [])


@secrets.command("delete-acl")
@click.argument("scope", required=False)
@click.argument("principal", required=False)
@json_option
@click.pass_context
def delete_acl(ctx: click.Context, scope: str | None, principal: str | None,
               json_body: dict[str, Any] | None) -> None:
    """Delete an ACL.

    Removes PRINCIPAL's entry on SCOPE. You need MANAGE on the scope.
    """
    body = _args_or_json(("scope", "principal"), (scope, principal), json_body)
    from_context(ctx).call("POST", BASE + "/acls/delete", body)
