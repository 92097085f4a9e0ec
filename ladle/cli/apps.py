"""`ladle apps`: mirrors `databricks apps`, talking to the HTTP API (/api/2.0/apps) only.

Long-running commands (create, deploy, start, stop) live in apps_lro.py, the scaffolding
commands (manifest, init) in apps_init.py, `run-local` in apps_run_local.py and `logs` in
apps_logs.py. `list` and `list-deployments` print a table in text mode (the Databricks CLI's
templates) and JSON with `-o json`; the other commands print JSON.
"""

from __future__ import annotations

from typing import Any, Iterator

import click

from ladle.cli.apps_init import init, manifest
from ladle.cli.apps_logs import logs
from ladle.cli.apps_lro import create, deploy, start, stop
from ladle.cli.apps_run_local import run_local
from ladle.cli.client import ApiClient, from_context, seg
from ladle.cli.options import LadleGroup, json_option, settings
from ladle.cli.output import emit_json, emit_list

BASE = "/api/2.0/apps"
PERMISSIONS = "/api/2.0/permissions/apps"


@click.group("apps", cls=LadleGroup, short_help="Build, deploy and run apps next to your serving endpoints.")
def apps() -> None:
    """Apps run directly on ladle, integrate with your serving endpoints, and let users
    reach them through ladle's sign-in.

    These commands mirror the Databricks CLI's apps group: `init` scaffolds an app,
    `deploy --source-code-path DIR` uploads and deploys it, `logs` shows its output.
    """


for _command in (create, deploy, start, stop, init, manifest, run_local, logs):
    apps.add_command(_command)


def _pages(client: ApiClient, path: str, key: str, page_size: int | None) -> Iterator[dict[str, Any]]:
    params: dict[str, Any] = {"page_size": page_size} if page_size else {}
    while True:
        query = "&".join(f"{k}={seg(str(v))}" for k, v in params.items())
        answer = client.call("GET", path + (f"?{query}" if query else "")) or {}
        yield from answer.get(key) or []
        token = answer.get("next_page_token")
        if not token:
            return
        params["page_token"] = token


def _table(rows: list[list[str]]) -> None:
    """Columns padded like Go's tabwriter (min width 0, padding 2). Hand-written: rich's tables
    draw borders and wrap cells, which the Databricks CLI's plain tab-aligned output has not."""
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for row in rows:
        click.echo("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())


def _state(obj: dict[str, Any] | None, key: str) -> str:
    return str(((obj or {}).get(key) or {}).get("state") or "")


@apps.command("get")
@click.argument("name")
@click.pass_context
def get(ctx: click.Context, name: str) -> None:
    """Get an app.

    Retrieves information for the app with the supplied name.

    NAME is the name of the app.
    """
    emit_json(from_context(ctx).call("GET", f"{BASE}/{seg(name)}"))


@apps.command("list")
@click.option("--limit", type=int, default=0, help="Maximum number of results to return.")
@click.option("--page-size", type=int, default=None, help="Upper bound for items returned.")
@click.pass_context
def list_(ctx: click.Context, limit: int, page_size: int | None) -> None:
    """List apps.

    Lists all apps in the workspace.
    """
    if limit < 0:
        raise click.ClickException("--limit must be a non-negative integer")
    items = list(_pages(from_context(ctx), BASE, "apps", page_size))
    items = items[:limit] if limit else items
    if settings(ctx).output == "json":
        emit_list(items)
        return
    rows = [["Name", "Url", "ComputeStatus", "DeploymentStatus"]]
    rows += [[str(a.get("name") or ""), str(a.get("url") or ""), _state(a, "compute_status"),
              _state(a.get("active_deployment"), "status")] for a in items]
    _table(rows)


@apps.command("list-deployments")
@click.argument("app_name")
@click.option("--limit", type=int, default=0, help="Maximum number of results to return.")
@click.option("--page-size", type=int, default=None, help="Upper bound for items returned.")
@click.pass_context
def list_deployments(ctx: click.Context, app_name: str, limit: int, page_size: int | None) -> None:
    """List app deployments.

    Lists all app deployments for the app with the supplied name.

    APP_NAME is the name of the app.
    """
    if limit < 0:
        raise click.ClickException("--limit must be a non-negative integer")
    items = list(_pages(from_context(ctx), f"{BASE}/{seg(app_name)}/deployments", "app_deployments", page_size))
    items = items[:limit] if limit else items
    if settings(ctx).output == "json":
        emit_list(items)
        return
    rows = [["DeploymentId", "State", "CreatedAt"]]
    rows += [[str(d.get("deployment_id") or ""), _state(d, "status"), str(d.get("create_time") or "")]
             for d in items]
    _table(rows)


@apps.command("get-deployment")
@click.argument("app_name")
@click.argument("deployment_id")
@click.pass_context
def get_deployment(ctx: click.Context, app_name: str, deployment_id: str) -> None:
    """Get an app deployment.

    APP_NAME is the name of the app. DEPLOYMENT_ID is the unique id of the deployment.
    """
    emit_json(from_context(ctx).call("GET", f"{BASE}/{seg(app_name)}/deployments/{seg(deployment_id)}"))


@apps.command("update")
@click.argument("name")
@json_option
@click.option("--description", help="The description of the app.")
@click.pass_context
def update(ctx: click.Context, name: str, json_body: dict[str, Any] | None, description: str | None) -> None:
    """Update an app.

    Updates the app with the supplied name (`--json` takes an App: description, resources,
    user_api_scopes...).

    NAME is the name of the app.
    """
    body = dict(json_body or {})
    body["name"] = name
    if description is not None:
        body["description"] = description
    emit_json(from_context(ctx).call("PATCH", f"{BASE}/{seg(name)}", body))


@apps.command("delete")
@click.argument("name")
@click.pass_context
def delete(ctx: click.Context, name: str) -> None:
    """Delete an app.

    Deletes the app, its service principal and the grants its resources gave it.

    NAME is the name of the app.
    """
    emit_json(from_context(ctx).call("DELETE", f"{BASE}/{seg(name)}"))


@apps.command("get-permission-levels")
@click.argument("app_name")
@click.pass_context
def get_permission_levels(ctx: click.Context, app_name: str) -> None:
    """Get app permission levels.

    APP_NAME is the app for which to get or manage permissions.
    """
    emit_json(from_context(ctx).call("GET", f"{PERMISSIONS}/{seg(app_name)}/permissionLevels"))


@apps.command("get-permissions")
@click.argument("app_name")
@click.pass_context
def get_permissions(ctx: click.Context, app_name: str) -> None:
    """Get app permissions (CAN_USE, CAN_MANAGE).

    APP_NAME is the app for which to get or manage permissions.
    """
    emit_json(from_context(ctx).call("GET", f"{PERMISSIONS}/{seg(app_name)}"))


@apps.command("set-permissions")
@click.argument("app_name")
@json_option
@click.pass_context
def set_permissions(ctx: click.Context, app_name: str, json_body: dict[str, Any] | None) -> None:
    """Set app permissions, replacing the direct ones (`access_control_list`).

    APP_NAME is the app for which to get or manage permissions.
    """
    emit_json(from_context(ctx).call("PUT", f"{PERMISSIONS}/{seg(app_name)}", dict(json_body or {})))


@apps.command("update-permissions")
@click.argument("app_name")
@json_option
@click.pass_context
def update_permissions(ctx: click.Context, app_name: str, json_body: dict[str, Any] | None) -> None:
    """Update app permissions, keeping the grants not named (`access_control_list`).

    APP_NAME is the app for which to get or manage permissions.
    """
    emit_json(from_context(ctx).call("PATCH", f"{PERMISSIONS}/{seg(app_name)}", dict(json_body or {})))
