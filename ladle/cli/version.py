"""`ladle version [-o json]`.

The JSON has the Databricks CLI's shape. `Version` is ladle's own version; `Major`, `Minor`,
`Patch` give the Databricks CLI release whose `auth token` interface this CLI implements
(`--profile`, `--force-refresh`), because that is what the Databricks SDKs read them for when
they run `ladle auth token` for a profile with `auth_type = databricks-cli`.
"""

from __future__ import annotations

import json

import click

from ladle.cli.options import LadleCommand, cli_version, settings

# Databricks CLI release whose `auth token` flags this CLI supports (--force-refresh came in 0.296.0).
AUTH_TOKEN_COMPAT = (0, 296, 0)


@click.command("version", cls=LadleCommand)
@click.pass_context
def version(ctx: click.Context) -> None:
    """Retrieve information about the current version of this CLI."""
    own = cli_version()
    if settings(ctx).output != "json":
        click.echo(f"ladle v{own}")
        return
    major, minor, patch = AUTH_TOKEN_COMPAT
    click.echo(json.dumps({"ProjectName": "ladle", "Version": own, "Major": major, "Minor": minor,
                           "Patch": patch, "Prerelease": "", "IsSnapshot": False,
                           "DatabricksCliCompat": f"{major}.{minor}.{patch}"}, indent=2))
