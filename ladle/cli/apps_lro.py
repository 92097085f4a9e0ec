"""The long-running `ladle apps` commands: create, deploy, start, stop.

Each sends its request, then (unless `--no-wait`) waits like databricks-sdk's waiters
(apps_wait.py) and prints the final object. `deploy --source-code-path DIR` uploads a local
folder to `/Workspace/Users/<me>/apps/<name>` first (apps_upload.py).
"""

from __future__ import annotations

from typing import Any

import click

from ladle.cli.apps_project import deploy_project, has_project
from ladle.cli.apps_upload import resolve_source
from ladle.cli.apps_wait import BASE, app_target, deployment_target, wait_for, with_logs_hint
from ladle.cli.client import from_context, seg
from ladle.cli.options import Duration, LadleCommand, json_option, settings
from ladle.cli.output import emit_json


def _wait_options(target: str):  # type: ignore[no-untyped-def]
    def deco(f):  # type: ignore[no-untyped-def]
        f = click.option("--timeout", type=Duration(), default="20m", show_default=True,
                         help=f"maximum amount of time to reach {target} state")(f)
        return click.option("--no-wait", is_flag=True, default=False,
                            help=f"do not wait to reach {target} state")(f)
    return deco


@click.command("create", cls=LadleCommand)
@click.argument("name", required=False)
@json_option
@_wait_options("ACTIVE")
@click.option("--description", help="The description of the app.")
@click.option("--no-compute", is_flag=True, default=False, help="If true, the app will not be started after creation.")
@click.pass_context
def create(ctx: click.Context, name: str | None, json_body: dict[str, Any] | None, no_wait: bool,
           timeout: float, description: str | None, no_compute: bool) -> None:
    """Create an app in your workspace.

    NAME is the name of the app. The name must contain only lowercase alphanumeric characters
    and hyphens. It must be unique within the workspace. With --json, give `name` (and
    `resources`, `user_api_scopes`...) there instead.

    Waits until the app's compute is ACTIVE unless --no-wait or --no-compute.
    """
    if json_body is not None and name:
        raise click.UsageError("when --json flag is specified, no positional arguments are allowed. "
                               "Provide 'name' in your JSON input")
    if json_body is None and not name:
        raise click.UsageError("Missing argument 'NAME'.")
    body = dict(json_body or {"name": name})
    if description is not None:
        body["description"] = description
    client = from_context(ctx)
    answer = client.call("POST", BASE + ("?no_compute=true" if no_compute else ""), body) or {}
    if no_wait or no_compute:
        emit_json(answer)
        return
    emit_json(wait_for(client, app_target(str(answer.get("name") or body.get("name")), "ACTIVE"), timeout))


@click.command("deploy", cls=LadleCommand)
@click.argument("app_name", required=False)
@json_option
@_wait_options("SUCCEEDED")
@click.option("--deployment-id", help="The unique id of the deployment.")
@click.option("--mode", type=click.Choice(["AUTO_SYNC", "SNAPSHOT"]),
              help="The mode of which the deployment will manage the source code.")
@click.option("--source-code-path",
              help="The workspace path of the source code (/Workspace/...), or a local folder to upload first.")
@click.pass_context
def deploy(ctx: click.Context, app_name: str | None, json_body: dict[str, Any] | None, no_wait: bool,
           timeout: float, deployment_id: str | None, mode: str | None, source_code_path: str | None) -> None:
    """Create an app deployment.

    Creates an app deployment for the app with the supplied name. A local folder given as
    --source-code-path is uploaded to /Workspace/Users/<you>/apps/APP_NAME (what .gitignore
    lists, .venv, .env and .databricks are left out) and that workspace path is deployed.

    Without APP_NAME, in a project folder (databricks.yml, as `apps init` writes it): deploys
    the project's bundle and runs its app (`ladle bundle deploy`, `ladle bundle run <app>`).

    APP_NAME is the name of the app.

    Waits until the deployment SUCCEEDED unless --no-wait.
    """
    if not app_name:
        if has_project() and json_body is None and source_code_path is None:
            deploy_project(settings(ctx).profile)
            return
        raise click.UsageError("Missing argument 'APP_NAME' (required outside a project folder).")
    client = from_context(ctx)
    body = dict(json_body or {})
    for key, value in (("deployment_id", deployment_id), ("mode", mode)):
        if value is not None:
            body[key] = value
    source = resolve_source(client, app_name, source_code_path or body.get("source_code_path"))
    if source is not None:
        body["source_code_path"] = source
    answer = client.call("POST", f"{BASE}/{seg(app_name)}/deployments", body) or {}
    if no_wait:
        emit_json(answer)
        return
    dep_id = answer.get("deployment_id")
    if not dep_id:
        raise click.ClickException("the server's answer has no deployment_id to wait for; use --no-wait")
    try:
        emit_json(wait_for(client, deployment_target(app_name, str(dep_id)), timeout))
    except click.ClickException as exc:
        raise with_logs_hint(app_name, settings(ctx).profile, exc) from exc


def _lifecycle(ctx: click.Context, name: str, action: str, target: str, no_wait: bool, timeout: float) -> None:
    client = from_context(ctx)
    answer = client.call("POST", f"{BASE}/{seg(name)}/{action}", {}) or {}
    if no_wait:
        emit_json(answer)
        return
    emit_json(wait_for(client, app_target(name, target), timeout))


@click.command("start", cls=LadleCommand)
@click.argument("name")
@_wait_options("ACTIVE")
@click.pass_context
def start(ctx: click.Context, name: str, no_wait: bool, timeout: float) -> None:
    """Start an app.

    Starts the last active deployment of the app in the workspace.

    NAME is the name of the app.
    """
    _lifecycle(ctx, name, "start", "ACTIVE", no_wait, timeout)


@click.command("stop", cls=LadleCommand)
@click.argument("name")
@_wait_options("STOPPED")
@click.pass_context
def stop(ctx: click.Context, name: str, no_wait: bool, timeout: float) -> None:
    """Stop an app.

    Stops the active deployment of the app in the workspace.

    NAME is the name of the app.
    """
    _lifecycle(ctx, name, "stop", "STOPPED", no_wait, timeout)
