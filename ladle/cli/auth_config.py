"""Where the CLI's host and credentials come from: the Databricks SDK's "unified auth" order.

1. Explicit flags: `-p/--profile NAME` selects a profile of the config file, and that profile
   alone supplies host and credentials (the environment's `DATABRICKS_HOST`/`DATABRICKS_TOKEN`
   are not mixed in, so a `-p` never sends one workspace's token to another's host).
2. The environment: `DATABRICKS_HOST`, `DATABRICKS_TOKEN`, `DATABRICKS_CLIENT_ID`,
   `DATABRICKS_CLIENT_SECRET`, `DATABRICKS_AUTH_TYPE`.
3. `DATABRICKS_CONFIG_PROFILE`: that profile fills what the environment left unset.
4. Otherwise, when the environment set no host and no credential, the config file's
   `[__settings__] default_profile`, else its `[DEFAULT]` section.

The config file is `DATABRICKS_CONFIG_FILE`, else `~/.databrickscfg`. A named profile does
not inherit `[DEFAULT]`'s keys (as in the SDKs). A host without a scheme gets `https://`; a
trailing slash is dropped. Nothing usable (no host, or a host and no credential) is an error
that starts `cannot configure default credentials`, raised before any request is sent.

Hand-written rather than built on `databricks.sdk.Config`: the SDK is a test dependency of
ladle, not a runtime one, and its Config fetches `/.well-known/databricks-config` while it is
being constructed, i.e. it would send a request before the configuration is known to be usable.
"""

from __future__ import annotations

import configparser
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import click

AUTH_DOCS = "https://docs.databricks.com/en/dev-tools/auth.html#databricks-client-unified-authentication"
CANNOT_CONFIGURE = (
    "cannot configure default credentials, please check "
    f"{AUTH_DOCS} to configure credentials for your preferred authentication method"
)
DEFAULT_CONFIG_FILE = "~/.databrickscfg"
SETTINGS_SECTION = "__settings__"
_NO_DEFAULT_SECTION = "\x00no-default\x00"


@dataclass(frozen=True)
class Attr:
    name: str
    env: str
    auth: str = ""  # the authorization method this attribute belongs to
    sensitive: bool = False


# The attributes ladle's CLI reads, in the SDK's order (databricks/sdk/config.py).
ATTRS = (
    Attr("host", "DATABRICKS_HOST"),
    Attr("token", "DATABRICKS_TOKEN", auth="pat", sensitive=True),
    Attr("client_id", "DATABRICKS_CLIENT_ID", auth="oauth"),
    Attr("client_secret", "DATABRICKS_CLIENT_SECRET", auth="oauth", sensitive=True),
    Attr("auth_type", "DATABRICKS_AUTH_TYPE"),
    Attr("databricks_cli_path", "DATABRICKS_CLI_PATH"),
)
PROFILE_ENV = "DATABRICKS_CONFIG_PROFILE"
CONFIG_FILE_ENV = "DATABRICKS_CONFIG_FILE"
SUPPORTED_AUTH_TYPES = ("pat", "oauth-m2m", "databricks-cli")


class ConfigError(click.ClickException):
    """Host or credentials could not be resolved (nothing has been sent anywhere)."""


@dataclass(frozen=True)
class ClientConfig:
    """A usable configuration: a host and the credential to send there."""

    host: str
    token: str = field(repr=False)
    auth_type: str = "pat"
    profile: str | None = None
    config_file: str | None = None
    # attribute name -> where its value came from (e.g. "DATABRICKS_HOST environment variable")
    sources: Mapping[str, str] = field(default_factory=dict, compare=False)
    client_secret: str = field(default="", repr=False, compare=False)
    # OAuth types: a fresh access token when the server refuses the current one (it expired mid-command)
    renew: Callable[[], str] | None = field(default=None, repr=False, compare=False)

    @property
    def source(self) -> str:
        return self.sources.get("host", "")

    def secrets(self) -> tuple[str, ...]:
        """Values that must never appear in logs."""
        return tuple(s for s in (self.token, self.client_secret) if s)


@dataclass(frozen=True)
class Resolved:
    """What the flags, the environment and the config file say, before any credential is fetched."""

    values: Mapping[str, str]
    sources: Mapping[str, str]
    profile: str | None
    config_file: str | None  # the file, when a profile of it was used
    path: str  # the config file's path (whether or not it exists)
    shown_path: str
    debug: str


def normalize_host(host: str) -> str:
    host = host.strip()
    if "://" not in host:
        host = "https://" + host
    return host.rstrip("/")


def config_file_path(env: Mapping[str, str]) -> str:
    path = env.get(CONFIG_FILE_ENV) or DEFAULT_CONFIG_FILE
    if path == "~" or path.startswith("~/"):
        home = env.get("HOME") or os.path.expanduser("~")
        path = os.path.join(home, path[2:])
    return path


def resolve_config(profile: str | None = None, env: Mapping[str, str] | None = None) -> ClientConfig:
    """Resolve host and credentials; `profile` is the `-p/--profile` flag (None when absent).

    OAuth auth types fetch their token here: `databricks-cli` from the token cache (refreshed
    at the host's token endpoint when expired), `oauth-m2m` from the host's token endpoint.
    """
    env = os.environ if env is None else env
    resolved = resolve_values(profile, env)
    _validate(resolved.values, resolved.debug)
    return _credentials(resolved, env)


def resolve_values(profile: str | None = None, env: Mapping[str, str] | None = None) -> Resolved:
    """The attributes and where each came from (no validation, nothing sent)."""
    env = os.environ if env is None else env
    values: dict[str, str] = {}
    sources: dict[str, str] = {}
    path = config_file_path(env)
    shown_path = env.get(CONFIG_FILE_ENV) or DEFAULT_CONFIG_FILE

    if profile:
        name: str | None = profile
        profile_source = "--profile flag"
    else:
        for attr in ATTRS:
            value = (env.get(attr.env) or "").strip()
            if value:
                values[attr.name] = value
                sources[attr.name] = f"{attr.env} environment variable"
        name = (env.get(PROFILE_ENV) or "").strip() or None
        profile_source = f"{PROFILE_ENV} environment variable"

    file_used = False
    load_file = bool(name) or not (values.get("host") or any(values.get(a.name) for a in ATTRS if a.auth))
    if load_file:
        loaded = _load_profile(path, name)
        if loaded is not None:
            file_used = True
            section, from_file, explicit = loaded
            for key, value in from_file.items():
                if key in {a.name for a in ATTRS} and value and key not in values:
                    values[key] = value
                    sources[key] = f"{shown_path} profile {section}"
            if explicit:
                name = section
                if not profile and not env.get(PROFILE_ENV):
                    profile_source = f"[{SETTINGS_SECTION}] default_profile of {shown_path}"
    if name:
        sources["profile"] = profile_source

    debug = _debug_string(values, sources, name, path, env)
    return Resolved(values, sources, name, path if file_used else None, path, shown_path, debug)


def _load_profile(path: str, name: str | None) -> tuple[str, dict[str, str], bool] | None:
    """The profile's keys: (section, keys, named explicitly); None when absent and not required."""
    if name == SETTINGS_SECTION:
        raise ConfigError(f"resolve: {SETTINGS_SECTION} is a reserved section name and cannot be used as a profile")
    if not os.path.exists(path):
        return None  # an explicit profile then ends in "cannot configure ...", naming the file
    parser = configparser.ConfigParser(default_section=_NO_DEFAULT_SECTION, interpolation=None)
    try:
        parser.read(path, encoding="utf-8")
    except (configparser.Error, OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"resolve: cannot parse config file {path}: {exc}") from exc
    explicit = name is not None
    if name is None and parser.has_option(SETTINGS_SECTION, "default_profile"):
        name = parser.get(SETTINGS_SECTION, "default_profile").strip() or None
        if name == SETTINGS_SECTION:
            raise ConfigError(f"resolve: {SETTINGS_SECTION} is a reserved section name and cannot be used as a profile")
        explicit = name is not None
    name = name or "DEFAULT"
    if not parser.has_section(name) or not parser.items(name):
        if explicit:
            known = [s for s in parser.sections() if s != SETTINGS_SECTION]
            hint = f" (profiles there: {', '.join(known)})" if known else ""
            raise ConfigError(f"resolve: {path} has no {name} profile configured{hint}")
        return None
    return name, {k.lower(): v.strip() for k, v in parser.items(name)}, explicit


def _debug_string(
    values: Mapping[str, str], sources: Mapping[str, str], profile: str | None, path: str, env: Mapping[str, str]
) -> str:
    """`Config: host=..., token=***, profile=.... Env: ...` like the SDK's (secrets masked)."""
    used = [f"{a.name}={'***' if a.sensitive else values[a.name]}" for a in ATTRS if values.get(a.name)]
    if profile:
        used.append(f"profile={profile}")
    used.append(f"config_file={path}")
    envs = [a.env for a in ATTRS if sources.get(a.name, "").startswith(a.env)]
    envs += [v for v in (PROFILE_ENV, CONFIG_FILE_ENV) if env.get(v)]
    text = "Config: " + ", ".join(used)
    return text + (f". Env: {', '.join(envs)}" if envs else "")


def _validate(values: Mapping[str, str], debug: str) -> None:
    methods = sorted({a.auth for a in ATTRS if a.auth and values.get(a.name)})
    if len(methods) > 1 and not values.get("auth_type"):
        raise ConfigError(f"validate: more than one authorization method configured: {' and '.join(methods)}. {debug}")


def effective_auth_type(values: Mapping[str, str], has_cached: Callable[[], bool] = lambda: False) -> str:
    """The auth type the values select: explicit `auth_type`, else by the credentials present;
    a host alone uses the token cache of `ladle auth login` when it has an entry (the SDK's
    databricks-cli provider); "" when nothing is usable."""
    auth_type = values.get("auth_type") or ""
    if auth_type:
        return auth_type
    if values.get("token"):
        return "pat"
    if values.get("client_id") and values.get("client_secret"):
        return "oauth-m2m"
    if values.get("host") and has_cached():
        return "databricks-cli"
    return ""


def _credentials(resolved: Resolved, env: Mapping[str, str]) -> ClientConfig:
    from ladle.cli import auth_tokens  # noqa: PLC0415 - the OAuth stack loads only when used
    from ladle.cli.auth_cache import TokenCache, cache_path  # noqa: PLC0415
    from ladle.cli.auth_oauth import OAuthFailure  # noqa: PLC0415

    values, debug = resolved.values, resolved.debug
    host = normalize_host(values["host"]) if values.get("host") else ""
    cache = TokenCache(cache_path(env))
    auth_type = effective_auth_type(
        values, lambda: auth_tokens.has_cached_token(host, resolved.profile, cache))
    if auth_type and auth_type not in SUPPORTED_AUTH_TYPES:
        raise ConfigError(
            f"{auth_type} auth: not supported by this ladle CLI (it supports "
            f"{', '.join(SUPPORTED_AUTH_TYPES)}). {debug}"
        )
    made = {"auth_type": auth_type, "profile": resolved.profile, "config_file": resolved.config_file,
            "sources": dict(resolved.sources)}
    if host and auth_type == "pat" and values.get("token"):
        return ClientConfig(host=host, token=values["token"], **made)
    try:
        if host and auth_type == "oauth-m2m" and values.get("client_id") and values.get("client_secret"):
            client_id, secret = values["client_id"], values["client_secret"]
            token = auth_tokens.m2m_token(host, client_id, secret)
            return ClientConfig(host=host, token=token.access_token, client_secret=secret, **made,
                                renew=lambda: auth_tokens.m2m_token(host, client_id, secret).access_token)
        if host and auth_type == "databricks-cli":
            profile = resolved.profile
            token = auth_tokens.u2m_token(host, profile, cache=cache)
            return ClientConfig(host=host, token=token.access_token, **made, renew=lambda: auth_tokens.u2m_token(
                host, profile, cache=cache, force_refresh=True).access_token)
    except OAuthFailure as exc:
        raise ConfigError(f"{auth_type} auth: {exc}. {debug}") from exc
    if not host:
        reason = "no host is configured"
    elif auth_type == "oauth-m2m":
        reason = f"{host} needs both client_id and client_secret for oauth-m2m"
    elif auth_type == "pat":
        reason = f"no token is configured for {host}"
    else:
        reason = f"no token is configured for {host}"
    if resolved.profile and not os.path.exists(resolved.path):
        reason += f" ({resolved.path} does not exist)"
    raise ConfigError(
        f"{CANNOT_CONFIGURE}. {debug}. {reason[0].upper()}{reason[1:]}: use --profile NAME to select a "
        f"profile of {resolved.shown_path}, or authenticate first (DATABRICKS_HOST and DATABRICKS_TOKEN, "
        "a profile with host and token, `ladle configure` or `ladle auth login`)"
    )
