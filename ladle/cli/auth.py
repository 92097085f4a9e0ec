"""`ladle auth`: login, token, profiles, env, describe, logout and switch, like `databricks auth`.

Messages go to stderr and data to stdout, as the Databricks CLI does. `auth token` prints the
cached access token as JSON `{"access_token", "token_type", "expiry"}` (the refresh token stays
in the cache); that is what the SDKs' databricks-cli provider parses.
"""

from __future__ import annotations

import json
import os
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import click
import httpx

from ladle.cli.auth_cache import TokenCache
from ladle.cli.auth_config import ConfigError, config_file_path, normalize_host, resolve_config
from ladle.cli.auth_describe import describe
from ladle.cli.auth_login import login, refuse_positional_with_flags
from ladle.cli.auth_oauth import OAuthFailure
from ladle.cli.auth_tokens import u2m_token
from ladle.cli.cfg_file import ConfigFileError, configured_default, delete_profile, load, profiles, set_default
from ladle.cli.options import Duration, LadleGroup, settings

ME = "/api/2.0/preview/scim/v2/Me"
VALIDATE_TIMEOUT_S = 5.0
_OUTPUT_FLAG = "ladle.cli.output"


@click.group("auth", cls=LadleGroup)
def auth() -> None:
    """Authentication related commands.

    `ladle auth login` signs in with OAuth and saves a profile of ~/.databrickscfg; the other
    commands show, refresh, switch and drop what is configured.
    """


auth.add_command(login)
auth.add_command(describe)


def _config_path() -> Path:
    return Path(config_file_path(os.environ))


def _load_profiles() -> tuple[list[tuple[str, dict[str, str]]], str]:
    path = _config_path()
    if not path.exists():
        return [], ""
    try:
        updater = load(path)
    except ConfigFileError as exc:
        raise click.ClickException(str(exc)) from exc
    return profiles(updater), configured_default(updater)


def _is_terminal() -> bool:
    try:
        return sys.stdin.isatty() and sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False


def _token_target(profile: str | None, host: str | None) -> tuple[str | None, str]:
    """(profile, host) for `auth token`: the Databricks CLI's resolution, without its pickers."""
    known, default = _load_profiles()
    by_name = dict(known)
    if not profile and not host:
        if os.environ.get("DATABRICKS_HOST"):
            host = os.environ["DATABRICKS_HOST"]
        elif os.environ.get("DATABRICKS_CONFIG_PROFILE"):
            profile = os.environ["DATABRICKS_CONFIG_PROFILE"]
        elif default and default in by_name:
            profile = default
        elif known:
            raise click.ClickException("no profile specified. Use --profile <name> to specify which profile to use")
        else:
            raise click.ClickException("no profiles configured. Run 'ladle auth login' to create a profile")
    if profile:
        if profile not in by_name:
            raise click.ClickException(f"profile {profile!r} not found in {_config_path()}")
        keys = by_name[profile]
        if keys.get("client_id") and keys.get("client_secret"):
            raise click.ClickException(
                f'profile "{profile}" uses M2M authentication (client_id/client_secret). `ladle auth token` only '
                "supports U2M (user-to-machine) authentication tokens. To authenticate as a service principal, "
                "use the Databricks SDK directly")
        profile_host = normalize_host(keys.get("host", "")) if keys.get("host") else ""
        if host and profile_host and normalize_host(host) != profile_host:
            raise click.ClickException(f"--host {host} does not match the host of profile {profile} ({profile_host})")
        host = host or profile_host
        if not host:
            raise click.ClickException(f"profile {profile} has no host")
        return profile, normalize_host(host)
    assert host is not None
    host = normalize_host(host)
    # Only profiles that `auth login` wrote can have cached tokens (the Go CLI also counts PAT
    # profiles of the host, and then refuses a --host that a PAT profile shares).
    matching = [n for n, k in known if k.get("host") and normalize_host(k["host"]) == host
                and k.get("auth_type") == "databricks-cli"]
    if len(matching) > 1:
        raise click.ClickException(
            f"{' and '.join(matching)} match {host} in {_config_path()}. Use --profile to specify which profile to use")
    return (matching[0] if matching else None), host


@auth.command("token")
@click.argument("target", metavar="[PROFILE]", required=False)
@click.option("--host", metavar="URL", default=None, help="Databricks host.")
@click.option("--timeout", type=Duration(), default="1h", show_default=True, help="Timeout for acquiring a token.")
@click.option("--force-refresh", is_flag=True, default=False,
              help="Force a token refresh even if the cached token is still valid.")
@click.pass_context
def token(ctx: click.Context, target: str | None, host: str | None, timeout: float, force_refresh: bool) -> None:
    """Get authentication token.

    Get authentication token from the local cache in ~/.databricks/token-cache.json. Refresh the
    access token if it is expired or close to expiry. Use --force-refresh to bypass expiry
    checks. Only for U2M authentication (`ladle auth login`), not client id and secret.
    """
    profile = settings(ctx).profile
    refuse_positional_with_flags(target, host, profile)
    if target:
        if target in dict(_load_profiles()[0]):
            profile = target
        else:
            host = target
    profile, host = _token_target(profile, host)
    try:
        tok = u2m_token(host, profile, force_refresh=force_refresh, timeout=timeout or None)
    except OAuthFailure as exc:
        raise click.ClickException(str(exc)) from exc
    if ctx.meta.get(_OUTPUT_FLAG) == "text":
        click.echo(tok.access_token)
    else:
        click.echo(json.dumps(tok.to_json(with_refresh=False), indent=2))


def validate_profile(name: str) -> tuple[bool, str]:
    """(valid, auth type) of one profile: its credentials resolve and SCIM Me answers 200."""
    try:
        cfg = resolve_config(name)
    except (ConfigError, click.ClickException):
        return False, ""
    try:
        response = httpx.get(cfg.host + ME, headers={"Authorization": f"Bearer {cfg.token}"},
                             timeout=VALIDATE_TIMEOUT_S)
    except httpx.HTTPError:
        return False, cfg.auth_type
    return response.status_code == 200, cfg.auth_type


@auth.command("profiles")
@click.option("--skip-validate", is_flag=True, default=False, help="Whether to skip validating the profiles")
@click.pass_context
def profiles_cmd(ctx: click.Context, skip_validate: bool) -> None:
    """Lists profiles from ~/.databrickscfg (each validated against its host unless --skip-validate)."""
    known, default = _load_profiles()
    rows = []
    for name, keys in known:
        if not keys.get("host"):
            continue
        rows.append({"name": name, "host": normalize_host(keys["host"]), "cloud": "aws",
                     "auth_type": keys.get("auth_type", ""), "valid": False, "default": name == default})
    if not skip_validate and rows:
        with ThreadPoolExecutor(max_workers=min(8, len(rows))) as pool:
            for row, (valid, auth_type) in zip(rows, pool.map(validate_profile, [r["name"] for r in rows])):
                row["valid"] = valid
                row["auth_type"] = auth_type or row["auth_type"]
    if settings(ctx).output == "json":
        shown = [{k: v for k, v in r.items() if k != "default" or v} for r in rows]
        click.echo(json.dumps({"profiles": shown}, indent=2))
        return
    table = [("Name", "Host", "Valid")] + [
        (r["name"] + (" (Default)" if r["default"] else ""), r["host"], "YES" if r["valid"] else "NO") for r in rows]
    widths = [max(len(row[i]) for row in table) for i in range(2)]
    for row in table:
        click.echo(f"{row[0]:<{widths[0]}}  {row[1]:<{widths[1]}}  {row[2]}")


@auth.command("env")
@click.option("--host", metavar="URL", default=None, help="Hostname to get auth env for")
@click.pass_context
def env_cmd(ctx: click.Context, host: str | None) -> None:
    """Get env: the DATABRICKS_* variables a profile resolves to, as {"env": {...}}.

    Values are shown as configured, secrets included (the output is meant to be exported).
    """
    from ladle.cli.auth_config import ATTRS, CONFIG_FILE_ENV, PROFILE_ENV, resolve_values

    profile = settings(ctx).profile
    if not profile and host:
        host_norm = normalize_host(host)
        matches = [n for n, k in _load_profiles()[0] if k.get("host") and normalize_host(k["host"]) == host_norm]
        if len(matches) > 1:
            raise click.ClickException(f"{' and '.join(matches)} match {host} in {_config_path()}")
        profile = matches[0] if matches else None
        if profile is None:
            raise click.ClickException(f"no profile of {_config_path()} has host {host}")
    profile = profile or "DEFAULT"
    cfg = resolve_config(profile)  # fails like any command when the profile cannot authenticate
    values = resolve_values(profile).values
    out = {a.env: values[a.name] for a in ATTRS if values.get(a.name)}
    out["DATABRICKS_HOST"] = cfg.host
    out["DATABRICKS_AUTH_TYPE"] = cfg.auth_type
    out[PROFILE_ENV] = profile
    if os.environ.get(CONFIG_FILE_ENV):
        out[CONFIG_FILE_ENV] = os.environ[CONFIG_FILE_ENV]
    click.echo(json.dumps({"env": dict(sorted(out.items()))}, indent=2))


@auth.command("logout")
@click.argument("target", metavar="[PROFILE]", required=False)
@click.option("--auto-approve", is_flag=True, default=False, help="Skip confirmation prompt")
@click.option("--delete", "delete_", is_flag=True, default=False, help="Delete the profile from the config file")
@click.pass_context
def logout(ctx: click.Context, target: str | None, auto_approve: bool, delete_: bool) -> None:
    """Log out of a profile: drop its cached OAuth tokens (and with --delete, the profile itself)."""
    profile = settings(ctx).profile
    if target and profile:
        raise click.ClickException(
            f'argument "{target}" cannot be combined with --profile. Use the --profile flag instead')
    profile = profile or target
    if not profile:
        raise click.ClickException(
            "the command is being run in a non-interactive environment, please specify a profile "
            "using the PROFILE argument or --profile flag")
    known, _ = _load_profiles()
    by_name = dict(known)
    if profile not in by_name:
        raise click.ClickException(f'profile "{profile}" not found. Available profiles: {", ".join(by_name)}')
    if not auto_approve:
        if not _is_terminal():
            raise click.ClickException("please specify --auto-approve to skip confirmation in non-interactive mode")
        what = f"log out of and delete profile {profile}" if delete_ else f"log out of profile {profile}"
        if not click.confirm(f"Warning: This will {what}. Are you sure?", err=True):
            click.echo("Aborting logout... No changes were made.", err=True)
            return
    keys = by_name[profile]
    by_login = keys.get("auth_type") == "databricks-cli"
    if by_login:
        host = normalize_host(keys.get("host", "")) if keys.get("host") else ""
        shared = any(n != profile and k.get("auth_type") == "databricks-cli" and k.get("host")
                     and normalize_host(k["host"]) == host for n, k in known)
        try:
            TokenCache().delete(profile, *([] if shared or not host else [host]))
        except OSError as exc:
            raise click.ClickException(f"failed to clear token cache: {exc}") from exc
    if delete_:
        try:
            delete_profile(_config_path(), profile)
        except (ConfigFileError, OSError) as exc:
            raise click.ClickException(f"failed to delete profile: {exc}") from exc
    if by_login and delete_:
        click.echo(f'Logged out of and deleted profile "{profile}".', err=True)
    elif by_login:
        click.echo(f'Logged out of profile "{profile}". Use --delete to also remove it from the config file.', err=True)
    elif delete_:
        click.echo(f'Deleted profile "{profile}" with no tokens to clear.', err=True)
    else:
        click.echo(f'No tokens to clear for profile "{profile}". Use --delete to remove it from the config file.',
                   err=True)


@auth.command("switch")
@click.pass_context
def switch(ctx: click.Context) -> None:
    """Set the default profile.

    The profile name (-p/--profile) is stored in a [__settings__] section of the config file
    under the default_profile key. `ladle auth profiles` shows which profile is the default.
    """
    profile = settings(ctx).profile
    if not profile:
        raise click.ClickException(
            "the command is being run in a non-interactive environment, please specify a profile using --profile")
    if profile not in dict(_load_profiles()[0]):
        raise click.ClickException(f'profile "{profile}" not found')
    try:
        set_default(_config_path(), profile)
    except (ConfigFileError, OSError) as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f'Default profile set to "{profile}".', err=True)
