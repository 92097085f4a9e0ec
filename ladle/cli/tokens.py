"""`ladle tokens`: manage ladle's personal access tokens over the token-management API."""

from __future__ import annotations

import click

from ladle.cli.client import from_context, seg
from ladle.cli.options import LadleGroup
from ladle.cli.output import emit_json, emit_list

TOKENS = "/api/2.0/token-management/tokens"
ON_BEHALF_OF = "/api/2.0/token-management/on-behalf-of/tokens"


@click.group("tokens", cls=LadleGroup)
def tokens() -> None:
    """Manage access tokens for users and service principals.

    Tokens authenticate API calls (`Authorization: Bearer <token>`). A token's value is
    shown once, when it is created.
    """


@tokens.command("create")
@click.option("--user", metavar="NAME", help="Create the token for this user.")
@click.option("--service-principal", metavar="NAME", help="Create the token for this service principal (application id).")
@click.option("--comment", help="Comment that describes the purpose of the token.")
@click.option("--lifetime-seconds", type=int, help="Number of seconds before the token expires (default: never).")
@click.pass_context
def create(
    ctx: click.Context,
    user: str | None,
    service_principal: str | None,
    comment: str | None,
    lifetime_seconds: int | None,
) -> None:
    """Create a token on behalf of a user or a service principal.

    Prints the new token's `token_value` (shown only this once) and `token_info`.
    """
    if bool(user) == bool(service_principal):
        raise click.UsageError("give exactly one of --user or --service-principal")
    body: dict[str, object] = {"user_name": user} if user else {"application_id": service_principal}
    if comment is not None:
        body["comment"] = comment
    if lifetime_seconds is not None:
        body["lifetime_seconds"] = lifetime_seconds
    emit_json(from_context(ctx).call("POST", ON_BEHALF_OF, body))


@tokens.command("list")
@click.pass_context
def list_(ctx: click.Context) -> None:
    """List all tokens (their infos; never their values)."""
    answer = from_context(ctx).call("GET", TOKENS) or {}
    emit_list(answer.get("token_infos") or [])


@tokens.command("revoke")
@click.argument("token_id")
@click.pass_context
def revoke(ctx: click.Context, token_id: str) -> None:
    """Revoke (delete) a token.

    TOKEN_ID is the id of the token (`token_info.token_id`), not its value.
    """
    from_context(ctx).call("DELETE", f"{TOKENS}/{seg(token_id)}")
