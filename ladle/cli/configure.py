"""`ladle configure`: save a host and a personal access token as a profile of ~/.databrickscfg
(or DATABRICKS_CONFIG_FILE), like `databricks configure`.

Interactive (stdin is a terminal): prompts for what the flags and environment left out, the
token hidden. Otherwise the host must come from `--host` or DATABRICKS_HOST and the token is
read from stdin. The profile is `-p/--profile`, else DATABRICKS_CONFIG_PROFILE, else DEFAULT.
Every other credential key of that profile is dropped (one auth method per profile); other
profiles and comments are kept. Prints nothing on success.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from urllib.parse import urlsplit

import click

from ladle.cli.auth_config import PROFILE_ENV, config_file_path
from ladle.cli.cfg_file import ConfigFileError, save_profile
from ladle.cli.options import LadleCommand, settings


def normalize_host(value: str) -> str:
    """Scheme and host only (`https://` added when missing), as the Databricks CLI stores them."""
    value = value.strip()
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https"):
        parts = urlsplit("https://" + value)
    if not parts.netloc:
        return value
    return f"{parts.scheme}://{parts.netloc}"


def validate_host(value: str) -> str:
    """ladle serves plain HTTP on a laptop too, so `http://` is allowed (the Go CLI wants https)."""
    parts = urlsplit(value)
    if not parts.netloc or parts.scheme not in ("http", "https"):
        raise click.ClickException(f"invalid host {value!r}: must start with https:// or http://")
    return value


def _stdin_is_terminal() -> bool:
    try:
        return sys.stdin.isatty()
    except (AttributeError, ValueError):
        return False


@click.command("configure", cls=LadleCommand)
@click.option("--host", metavar="URL", default=None, help="Databricks workspace host.")
@click.pass_context
def configure(ctx: click.Context, host: str | None) -> None:
    """Configure authentication.

    This command adds a profile to your ~/.databrickscfg file. You can write to a different
    file by setting the DATABRICKS_CONFIG_FILE environment variable.

    If this command is invoked in non-interactive mode, it will read the token from stdin.
    The host must be specified with the --host flag or the DATABRICKS_HOST environment variable.
    """
    host = host or os.environ.get("DATABRICKS_HOST") or ""
    profile = settings(ctx).profile or os.environ.get(PROFILE_ENV) or "DEFAULT"
    token = os.environ.get("DATABRICKS_TOKEN") or ""
    if _stdin_is_terminal():
        if not host:
            host = click.prompt("Databricks workspace host (https://...)", err=True)
        host = validate_host(normalize_host(host))
        if not token:
            token = click.prompt("Personal access token", hide_input=True, err=True)
    else:
        if not host:
            raise click.ClickException("host must be set in non-interactive mode")
        host = validate_host(normalize_host(host))
        if not token:
            words = sys.stdin.readline().split()
            if not words:
                raise click.ClickException("cannot read the token from stdin: it is empty")
            token = words[0]
    token = token.strip()
    if not token:
        raise click.ClickException("the token must not be empty")
    try:
        save_profile(Path(config_file_path(os.environ)), profile, {"host": host, "token": token})
    except (ConfigFileError, OSError) as exc:
        raise click.ClickException(str(exc)) from exc
