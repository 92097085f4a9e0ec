"""`ladle bundle`: endpoints and apps as code, mirroring `databricks bundle`.

databricks.yml (with `include`, `targets`, `variables`) is read and checked by the modules in
ladle/cli/bundles/; `deploy` prints the plan, applies it and keeps what it created in
`.databricks/bundle/<target>/resources.json`, which `destroy` removes exactly.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import click

from ladle.cli.bundle_load import prepare, target_options
from ladle.cli.bundles.deploy import Deployer, desired
from ladle.cli.bundles.planner import APPS, ENDPOINTS
from ladle.cli.bundles.resolve import Bundle
from ladle.cli.bundles.state import load_state
from ladle.cli.options import Duration, LadleGroup, settings

DEFAULT_TIMEOUT_S = 20 * 60.0


def _echo(message: str) -> None:
    click.echo(message, err=True)


def _header(bundle: Bundle) -> list[str]:
    return [f"Name: {bundle.name}", f"Target: {bundle.target}", "Workspace:",
            f"  User: {bundle.user_name}", f"  Path: {bundle.root_path}"]


def _timeout_option(f: Any) -> Any:
    return click.option("--timeout", type=Duration(), default=DEFAULT_TIMEOUT_S, show_default="20m",
                        help="How long to wait for each endpoint, app and deployment.")(f)


@click.group("bundle", cls=LadleGroup, short_help="Declarative endpoints and apps (databricks.yml).")
def bundle() -> None:
    """Databricks Asset Bundles for ladle: serving endpoints and apps described in databricks.yml,
    validated, deployed, run and destroyed per target.

    Supported resources: model_serving_endpoints and apps.
    """


@bundle.command("validate", short_help="Validate the bundle's configuration.")
@target_options
@click.pass_context
def validate(ctx: click.Context, target: str | None, variables: tuple[str, ...]) -> None:
    """Validate the bundle: schema, variables, references, and what its resources refer to."""
    _, b = prepare(ctx, target, variables)
    if settings(ctx).output == "json":
        click.echo(json.dumps(_resolved(b), indent=2))
        return
    click.echo("\n".join([*_header(b), "", "Validation OK!"]))


@bundle.command("deploy", short_help="Deploy the bundle (plan, apply, wait).")
@target_options
@_timeout_option
@click.option("--auto-approve", is_flag=True, help="Skip interactive approvals (accepted for compatibility).")
@click.pass_context
def deploy(ctx: click.Context, target: str | None, variables: tuple[str, ...], timeout: float,
           auto_approve: bool) -> None:
    """Deploy the bundle: print the plan (create, update, recreate, delete), apply it, wait.

    Deploying again with nothing changed changes nothing. Apps are created or updated and their
    source uploaded; `ladle bundle run <app>` deploys and starts them.
    """
    client, b = prepare(ctx, target, variables)
    state = load_state(b.state_dir, b.name, b.target)
    deployer = Deployer(client, b, state, timeout, _echo)
    actions = deployer.plan()
    click.echo(f"Deploying bundle {b.name} (target {b.target}) to {b.root_path}")
    if not actions:
        state.save()
        click.echo("No changes: the deployment matches the bundle.")
        return
    click.echo("Plan:")
    for action in actions:
        click.echo(f"  {action}")
    deployer.apply(actions)
    click.echo("Deployment complete!")


@bundle.command("destroy", short_help="Delete what the bundle deployed.")
@target_options
@_timeout_option
@click.option("--auto-approve", is_flag=True, help="Skip the confirmation.")
@click.pass_context
def destroy(ctx: click.Context, target: str | None, variables: tuple[str, ...], timeout: float,
            auto_approve: bool) -> None:
    """Delete every resource this bundle deployed to the target, and its workspace files."""
    client, b = prepare(ctx, target, variables, server_checks=False)
    state = load_state(b.state_dir, b.name, b.target)
    if state.empty() and not state.path.is_file():
        click.echo("No active deployment found to destroy!")
        return
    deployer = Deployer(client, b, state, timeout, _echo)
    actions = deployer.destroy_plan()
    click.echo("The following resources will be deleted:")
    for action in actions:
        click.echo(f"  {action}")
    click.echo(f"All files and directories at the following location will be deleted: {b.root_path}")
    if not auto_approve:
        if not sys.stdin.isatty():
            raise click.ClickException("please specify --auto-approve to skip interactive confirmation checks "
                                       "for non tty consoles")
        if not click.confirm("Would you like to proceed?", default=False):
            click.echo("Destroy cancelled.")
            return
    deployer.apply(actions)
    deployer.remove_files()
    state.path.unlink(missing_ok=True)
    click.echo("Destroy complete!")


@bundle.command("run", short_help="Start and deploy an app of the bundle.")
@click.argument("key")
@target_options
@_timeout_option
@click.pass_context
def run(ctx: click.Context, key: str, target: str | None, variables: tuple[str, ...], timeout: float) -> None:
    """Start an app of the bundle (KEY: its key under resources.apps), deploy its source, print its URL."""
    client, b = prepare(ctx, target, variables)
    if key not in b.resources.get(APPS, {}):
        known = ", ".join(sorted(b.resources.get(APPS, {}))) or "none"
        raise click.ClickException(f"{key}: no such app in the bundle (apps: {known}); "
                                   "`ladle bundle run` runs apps")
    state = load_state(b.state_dir, b.name, b.target)
    if state.get(APPS, key) is None:
        raise click.ClickException(f"app {key} is not deployed: run `ladle bundle deploy` first")
    deployer = Deployer(client, b, state, timeout, _echo)
    spec = desired(b)[APPS][key]
    url = deployer.apps.run(spec)
    click.echo(f"You can access the app at {url}")


@bundle.command("summary", short_help="Show the bundle's resources and URLs.")
@target_options
@click.pass_context
def summary(ctx: click.Context, target: str | None, variables: tuple[str, ...]) -> None:
    """Describe the bundle's resources for the target, with their URLs once deployed."""
    client, b = prepare(ctx, target, variables, server_checks=False)
    state = load_state(b.state_dir, b.name, b.target)
    rows: dict[str, dict[str, dict[str, Any]]] = {ENDPOINTS: {}, APPS: {}}
    for key, item in b.resources.get(ENDPOINTS, {}).items():
        deployed = state.get(ENDPOINTS, key)
        rows[ENDPOINTS][key] = {"name": item.get("name"), "id": deployed.id if deployed else None,
                                "url": f"{client.config.host}/ui/endpoints/{item.get('name')}" if deployed else None}
    for key, item in b.resources.get(APPS, {}).items():
        deployed = state.get(APPS, key)
        url = None
        if deployed:
            from ladle.cli.bundles.apps import get

            url = (get(client, str(item.get("name"))) or {}).get("url")
        rows[APPS][key] = {"name": item.get("name"), "url": url}
    if settings(ctx).output == "json":
        click.echo(json.dumps({**_resolved(b), "resources": rows}, indent=2))
        return
    lines = [*_header(b), "Resources:"]
    for rtype, title in ((APPS, "Apps"), (ENDPOINTS, "Model Serving Endpoints")):
        if rows[rtype]:
            lines.append(f"  {title}:")
        for key, row in rows[rtype].items():
            lines += [f"    {key}:", f"      Name: {row['name']}", f"      URL:  {row['url'] or '(not deployed)'}"]
    click.echo("\n".join(lines))


def _resolved(b: Bundle) -> dict[str, Any]:
    return {"bundle": {"name": b.name, "target": b.target, **({"mode": b.mode} if b.mode else {})},
            "workspace": {"current_user": {"userName": b.user_name}, "root_path": b.root_path,
                          "file_path": b.file_path},
            "variables": {k: {"value": v} for k, v in b.variables.items()},
            "resources": {t: items for t, items in b.resources.items() if items}}
