"""`ladle auth describe`: who the configuration authenticates as (SCIM Me), with which auth type,
and each setting's value (secrets masked unless --sensitive) and source, like `databricks auth describe`.
"""

from __future__ import annotations

import json
import os
from typing import Any

import click
import httpx

from ladle.cli.auth_cache import CACHE_SHOWN
from ladle.cli.auth_config import (
    ATTRS, CONFIG_FILE_ENV, ConfigError, Resolved, effective_auth_type, normalize_host,
    resolve_config, resolve_values,
)
from ladle.cli.options import LadleCommand, settings

ME = "/api/2.0/preview/scim/v2/Me"
MASK = "********"
_ORDER = ("host", "token", "client_id", "client_secret", "profile", "config_file", "databricks_cli_path", "auth_type")


def _source(raw: str, resolved: Resolved) -> dict[str, str] | None:
    """The Go SDK's `{type, name}` for one of resolve_values' source strings."""
    if not raw:
        return None
    if raw.endswith(" environment variable"):
        return {"type": "environment", "name": raw[: -len(" environment variable")]}
    if raw == "--profile flag":
        return {"type": "flag", "name": "--profile"}
    return {"type": "file", "name": resolved.path}  # a profile's key, or [__settings__] default_profile


def _shown(source: dict[str, str] | None) -> str:
    if source is None:
        return ""
    if source["type"] == "environment":
        return f" (from {source['name']} environment variable)"
    if source["type"] == "flag":
        return f" (from {source['name']} flag)"
    return f" (from {source['name']} config file)"


def configuration(resolved: Resolved, auth_type: str, sensitive: bool) -> dict[str, dict[str, Any]]:
    sensitive_names = {a.name for a in ATTRS if a.sensitive}
    out: dict[str, dict[str, Any]] = {}
    for name in _ORDER:
        value = resolved.values.get(name, "")
        source = _source(resolved.sources.get(name, ""), resolved)
        if name == "host" and value:
            value = normalize_host(value)
        if name == "profile":
            value = resolved.profile or "default"
            source = _source(resolved.sources.get("profile", ""), resolved)
        if name == "config_file" and os.environ.get(CONFIG_FILE_ENV):
            value, source = os.environ[CONFIG_FILE_ENV], {"type": "environment", "name": CONFIG_FILE_ENV}
        if name == "databricks_cli_path":
            source = None  # as the Databricks CLI shows it: it cannot be overridden
        if name == "auth_type" and not value:
            value = auth_type
        if not value:
            continue
        if name in sensitive_names and not sensitive:
            value = MASK
        entry: dict[str, Any] = {"value": value}
        if source:
            entry["source"] = source
        if name in ("token", "client_id", "client_secret") and auth_type and (
                (name == "token") != (auth_type == "pat")):
            entry["auth_type_mismatch"] = True
        out[name] = entry
    return out


def status(profile: str | None, sensitive: bool) -> dict[str, Any]:
    resolved = resolve_values(profile)
    auth_type = effective_auth_type(resolved.values)
    result: dict[str, Any] = {"status": "success"}
    try:
        cfg = resolve_config(profile)
        auth_type = cfg.auth_type
        response = httpx.get(cfg.host + ME, headers={"Authorization": f"Bearer {cfg.token}"}, timeout=30.0)
        if response.status_code != 200:
            try:
                message = response.json().get("message") or response.json().get("detail") or response.text
            except ValueError:
                message = response.text or f"HTTP {response.status_code}"
            raise click.ClickException(str(message))
        result["username"] = response.json().get("userName", "")
    except (ConfigError, click.ClickException) as exc:
        result = {"status": "error", "error": exc.format_message()}
    except httpx.HTTPError as exc:
        result = {"status": "error", "error": f"cannot reach the host: {exc or type(exc).__name__}"}
    host = normalize_host(resolved.values["host"]) if resolved.values.get("host") else ""
    result["details"] = {"host": host, "auth_type": auth_type,
                         "configuration": configuration(resolved, auth_type, sensitive)}
    if auth_type == "databricks-cli":
        result["token_storage"] = {"mode": "plaintext", "location": CACHE_SHOWN, "source": "default"}
    return result


def render_text(result: dict[str, Any]) -> str:
    details = result["details"]
    lines = []
    if result["status"] == "success":
        lines.append(f"Host: {details['host']}")
        if result.get("username"):
            lines.append(f"User: {result['username']}")
        lines.append(f"Authenticated with: {details['auth_type']}")
    else:
        lines.append(f"Unable to authenticate: {result['error']}")
    storage = result.get("token_storage")
    if storage:
        lines.append(f"Token storage: {storage['mode']}, {storage['location']} (from {storage['source']})")
    lines += ["-----", "Current configuration:"]
    for name, entry in details["configuration"].items():
        mark = "~" if entry.get("auth_type_mismatch") else "✓"
        suffix = _shown(entry.get("source"))
        if entry.get("auth_type_mismatch") and suffix:
            suffix = suffix[:-1] + f", not used for auth type {details['auth_type']})"
        lines.append(f"  {mark} {name}: {entry['value']}{suffix}")
    return "\n".join(lines)


@click.command("describe", cls=LadleCommand)
@click.option("--sensitive", is_flag=True, default=False,
              help="Include sensitive fields like passwords and tokens in the output")
@click.pass_context
def describe(ctx: click.Context, sensitive: bool) -> None:
    """Describes the credentials and the source of those credentials, being used by the CLI to authenticate."""
    result = status(settings(ctx).profile, sensitive)
    if settings(ctx).output == "json":
        click.echo(json.dumps(result, indent=2, ensure_ascii=False))
    else:
        click.echo(render_text(result))

