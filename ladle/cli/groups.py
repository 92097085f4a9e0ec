"""`ladle groups`: manage the groups ladle keeps (for endpoint permissions by `group_name`
and AI Gateway rate limits keyed `user_group`)."""

from __future__ import annotations

import click

from ladle.cli.client import from_context, seg
from ladle.cli.options import LadleGroup
from ladle.cli.output import emit_json, emit_list

GROUPS = "/api/2.0/ladle/groups"


@click.group("groups", cls=LadleGroup)
def groups() -> None:
    """Manage groups of users and service principals.

    A group can be named in endpoint permissions (`group_name`) and in AI Gateway rate
    limits (`"key": "user_group", "principal": GROUP`). Changing groups needs an admin token.
    """


@groups.command("create")
@click.argument("name")
@click.pass_context
def create(ctx: click.Context, name: str) -> None:
    """Create an empty group called NAME."""
    emit_json(from_context(ctx).call("POST", GROUPS, {"display_name": name}))


@groups.command("list")
@click.pass_context
def list_(ctx: click.Context) -> None:
    """List groups and their members."""
    emit_list((from_context(ctx).call("GET", GROUPS) or {}).get("groups") or [])


def _member_body(user: str | None, service_principal: str | None) -> dict[str, str]:
    if bool(user) == bool(service_principal):
        raise click.UsageError("give exactly one of --user or --service-principal")
    return {"user_name": user} if user else {"service_principal_name": service_principal}  # type: ignore[dict-item]


@groups.command("add-member")
@click.argument("name")
@click.option("--user", metavar="USER", help="Add this user (user name / email).")
@click.option("--service-principal", metavar="ID", help="Add this service principal (application id).")
@click.pass_context
def add_member(ctx: click.Context, name: str, user: str | None, service_principal: str | None) -> None:
    """Add a user or a service principal to group NAME."""
    body = _member_body(user, service_principal)
    emit_json(from_context(ctx).call("POST", f"{GROUPS}/{seg(name)}/members", body))


@groups.command("remove-member")
@click.argument("name")
@click.argument("member")
@click.pass_context
def remove_member(ctx: click.Context, name: str, member: str) -> None:
    """Remove MEMBER (a user or service principal name) from group NAME."""
    emit_json(from_context(ctx).call("DELETE", f"{GROUPS}/{seg(name)}/members/{seg(member)}"))


@groups.command("delete")
@click.argument("name")
@click.pass_context
def delete(ctx: click.Context, name: str) -> None:
    """Delete group NAME (its members lose what the group granted)."""
    from_context(ctx).call("DELETE", f"{GROUPS}/{seg(name)}")
