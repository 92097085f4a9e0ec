"""The `ladle` command: one click group; each command group lives in its own module."""

from __future__ import annotations

import click

from ladle.cli.options import LadleGroup


@click.group(cls=LadleGroup)
@click.version_option(package_name="ladle")
def cli() -> None:
    """ladle: self-hosted model serving, wire-compatible with Databricks Model Serving.

    Host and token come from the flags, the environment (DATABRICKS_HOST, DATABRICKS_TOKEN,
    DATABRICKS_CONFIG_PROFILE) or ~/.databrickscfg, like the Databricks CLI. The global flags
    (-p/--profile, -o/--output, --debug, and --log-level, --log-file, --log-format) go before
    or after any command.
    """


def _register() -> None:
    from ladle.cli.server import server
    from ladle.cli.serving_endpoints import serving_endpoints
    from ladle.cli.apps import apps
    from ladle.cli.tokens import tokens
    from ladle.cli.groups import groups
    from ladle.cli.usage import usage
    from ladle.cli.models import models
    from ladle.cli.secrets import secrets
    from ladle.cli.permissions import permissions
    from ladle.cli.auth import auth
    from ladle.cli.configure import configure
    from ladle.cli.version import version
    from ladle.cli.bundle import bundle

    cli.add_command(server)
    cli.add_command(serving_endpoints)
    cli.add_command(apps)
    cli.add_command(tokens)
    cli.add_command(groups)
    cli.add_command(usage)
    cli.add_command(models)
    cli.add_command(secrets)
    cli.add_command(permissions)
    cli.add_command(auth)
    cli.add_command(configure)
    cli.add_command(version)
    cli.add_command(bundle)


def main() -> None:
    import sys

    if sys.argv[1:2] == ["server"]:   # the server's start skips importing every other group
        from ladle.cli.server import server

        cli.add_command(server)
    else:
        _register()
    cli(prog_name="ladle")
